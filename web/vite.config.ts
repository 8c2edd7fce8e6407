import { resolve } from "node:path";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the page on :5173 and sends the API to a server on :8000.
// Two pages: the reference page (index.html, served at /) and GraphiQL (graphiql.html, served
// at GET /graphql), both from local assets.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // Monaco (GraphiQL's editor, about 2.8 MB) is only loaded by /graphql, never by the page.
    chunkSizeWarningLimit: 3000,
    rollupOptions: {
      input: { index: resolve(import.meta.dirname, "index.html"), graphiql: resolve(import.meta.dirname, "graphiql.html") },
      // GraphiQL's modules start with "use no memo" (a React Compiler hint): harmless when bundled.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8000", ws: true },
      "/download": "http://127.0.0.1:8000",
    },
  },
});
