/**
 * Runs the downstream-tool example (examples/downstream-tool.test.ts) as part of `npm test`: the
 * example file keeps its own describe/it blocks; importing it registers them here.
 */
import '../../examples/downstream-tool.test.js';
