import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'conformance/index': 'src/conformance/index.ts',
    'testing/index': 'src/testing/index.ts',
  },
  format: ['cjs', 'esm'],
  dts: true,
  shims: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['uvu', 'uvu/assert'],
});
