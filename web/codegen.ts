import type { CodegenConfig } from "@graphql-codegen/cli";

// Operation types from the server's schema.graphql: a schema change that breaks a query
// of the page fails here (or in tsc right after), so it fails `npm run build`.
const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: "string", ByteCount: "number", JSON: "unknown", Upload: "File" },
      },
    },
  },
};
export default config;
