// One bundle for every page: the run view, the editor, and the live lists. Output (git-ignored)
// goes to webui/static/webui/build/ with fixed names, so templates can link it with {% static %}.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { fileURLToPath } from "node:url";

export default defineConfig({
  plugins: [react()],
  base: "/static/webui/build/",
  build: {
    outDir: fileURLToPath(new URL("../static/webui/build", import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2500,
    rollupOptions: {
      input: fileURLToPath(new URL("src/main.jsx", import.meta.url)),
      output: {
        entryFileNames: "weft.js",
        chunkFileNames: "weft-[name].js",
        assetFileNames: "weft[extname]",
      },
    },
  },
});
