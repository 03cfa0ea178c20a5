/**
 * Runs the collector-test recipe (examples/collector-test.test.ts) and keeps docs/testing.md
 * showing exactly that code, imports spelled as a consumer writes them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sandboxMissing } from '../sandbox/support.js';
import { skipWithoutPeer } from '../support/peers.js';
import '../../examples/collector-test.test.js';

// The recipe skips itself without the sandbox; under CI that must be loud.
skipWithoutPeer('bwrap', sandboxMissing());

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('docs/testing.md collector recipe', () => {
  it('shows the code of examples/collector-test.test.ts', () => {
    const example = read('examples/collector-test.test.ts');
    const region = /\/\/ recipe:start\n([\s\S]*?)\/\/ recipe:end\n/.exec(example)?.[1];
    expect(region).toBeDefined();
    const asConsumer = (region ?? '')
      .replaceAll("'../src/index.js'", "'eks-forensics'")
      .replaceAll("'../src/testing/index.js'", "'eks-forensics/testing'")
      .replace(/'\.\.\/src\/entries\/(\w+)\.js'/g, "'eks-forensics/$1'");
    const doc = read('docs/testing.md');
    const block = /<!-- recipe: examples\/collector-test\.test\.ts -->\n```ts\n([\s\S]*?)```\n/.exec(
      doc,
    )?.[1];
    expect(block, 'docs/testing.md lacks the recipe block').toBeDefined();
    expect(block).toBe(asConsumer);
  });

  it('links the downstream-tool example', () => {
    expect(read('docs/testing.md')).toContain('examples/downstream-tool.test.ts');
  });
});
