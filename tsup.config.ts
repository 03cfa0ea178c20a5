import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'fleet/index': 'src/fleet/index.ts',
    'errors/index': 'src/entries/errors.ts',
    'types/index': 'src/entries/types.ts',
    'schemas/index': 'src/entries/schemas.ts',
    'iam/index': 'src/entries/iam.ts',
    'auth/index': 'src/entries/auth.ts',
    'ephemeral/index': 'src/entries/ephemeral.ts',
    'codecs/index': 'src/entries/codecs.ts',
    'sink-kit/index': 'src/entries/sink-kit.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  shims: true,
  // Class names survive bundling (esbuild renames clashing classes to `_class6`…): users and
  // loggers read `err.constructor.name`, and the CJS build must say `KubeApiError` too.
  keepNames: true,
});
