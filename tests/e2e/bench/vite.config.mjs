// Bundles the side-by-side benchmark page (page/): the libraries from node_modules, their wasm as
// assets. tabmesh's own modules are not bundled: the page imports them at run time from the test
// server (/pkg/dist/browser.js: the npm package as built; /bench-wasm/: crates/bench-wasm).
import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

export default defineConfig({
  root: fileURLToPath(new URL("./page", import.meta.url)),
  logLevel: "warn",
  build: {
    target: "esnext",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    rollupOptions: { external: [/^\/(pkg|bench-wasm)\//] },
  },
});
