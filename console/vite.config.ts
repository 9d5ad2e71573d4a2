import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The bundle goes where the node serves it from (src/meshmpc/platform/console.py).
export default defineConfig({
  plugins: [react()],
  // The JDM editor (with Monaco) is one large lazy chunk loaded only on the strategy page.
  build: { outDir: "../src/meshmpc/platform/console_dist", emptyOutDir: true, chunkSizeWarningLimit: 5000 },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
  test: { environment: "jsdom", include: ["src/**/*.test.{ts,tsx}"] },
});
