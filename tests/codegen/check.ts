// Compiled with `tsc --strict` against the types codegen made from operations.graphql with
// web/codegen.ts's scalar map: each scalar must come out as the map documents, usable as such.
import type {
  ScalarMapCheckQuery,
  ScalarMapSettingsMutation,
  ScalarMapSettingsMutationVariables,
  ScalarMapUploadMutationVariables,
} from "./gql/graphql";

// True only when A and B are the same type (`any` and `unknown` included).
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

type Point = ScalarMapCheckQuery["restorePoints"]["nodes"][number];
type Settings = NonNullable<ScalarMapSettingsMutation["updateSettings"]["module"]>["settings"];

export const scalarsAreMapped: [
  Same<Point["createdAt"], string>,
  Same<Point["sizeBytes"], number>,
  Same<ScalarMapCheckQuery["storage"]["storedBytes"], number>,
  Same<Settings, unknown>,
  Same<ScalarMapSettingsMutationVariables["values"], unknown>,
  Same<ScalarMapUploadMutationVariables["file"], File>,
] = [true, true, true, true, true, true];

// And code a UI would write with them compiles under --strict.
export function describe(point: Point, settings: Settings): string {
  const when = new Date(point.createdAt).toISOString();
  const kib = (point.sizeBytes / 1024).toFixed(1);
  const keys = settings !== null && typeof settings === "object" ? Object.keys(settings).length : 0;
  return `${when}: ${kib} KiB, ${keys} settings`;
}

export function uploadVariables(file: File): ScalarMapUploadMutationVariables {
  return { file };
}
