import type { CodegenConfig } from "@graphql-codegen/cli";

// The TypeScript type of each custom scalar of the API (without it codegen types them `unknown`).
// docs/api/building-a-ui.md shows this map; tests/test_codegen_scalar_map.py checks that codegen
// with it gives these types and that `tsc --strict` accepts code using them.
export const scalars = {
  DateTime: "string", // RFC 3339 with its UTC offset; `new Date(value)` reads it
  ByteCount: "number", // a JSON integer, exact up to 2^53 - 1 (beyond Int's 2^31 - 1)
  JSON: "unknown", // any JSON value (a module's settings): narrow it before use
  Upload: "File", // input only: a file of a multipart request (a Blob works too at run time)
};

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
      config: { useTypeImports: true, enumsAsTypes: true, strictScalars: true, scalars },
    },
  },
};
export default config;
