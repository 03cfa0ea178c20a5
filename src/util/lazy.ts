/**
 * Dependencies loaded on first use, so that importing the package stays fast.
 *
 * @internal
 * @module
 */
import { createRequire } from 'node:module';

type YamlModule = typeof import('yaml');
let yamlModule: YamlModule | undefined;

/**
 * The `yaml` package, loaded synchronously the first time YAML is written or read (it costs more
 * to load than everything else needed at import).
 */
export function loadYaml(): YamlModule {
  yamlModule ??= createRequire(import.meta.url)('yaml') as YamlModule;
  return yamlModule;
}
