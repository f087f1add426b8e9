// /widget.js: the embeddable widget (widget.ts) as one classic script (an IIFE, no module, no
// chunk, its CSS inlined as a string for its Shadow DOM) with a fixed name, so that a company's
// pages can include it with a plain <script src>. Built after the pages (src/web/vite.config.ts)
// into the same dist/web, without emptying it.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: here('../../../dist/web'),
    emptyOutDir: false,
    sourcemap: false,
    target: 'es2020',
    lib: {
      entry: here('widget.ts'),
      formats: ['iife'],
      name: 'RefgraphWidget',
      fileName: () => 'widget.js',
    },
  },
});
