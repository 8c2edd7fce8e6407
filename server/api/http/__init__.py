"""The transport around GraphQL: who is asking (auth), multipart uploads, graphql-transport-ws."""
