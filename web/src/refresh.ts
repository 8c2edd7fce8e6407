// Views that show what operations change (restore points, local copies, locations and storage,
// schedules) refetch when one ends, after a reconnect, and after their own changes. Each such
// refetch must be answered by a request made after it was asked for. urql does not promise
// that: a request for the same query and variables as one already in flight (another view's,
// or an earlier refetch's) joins it, and gets its answer, read before the change; and its
// document cache asks again for a list, in parallel, after each mutation or event whose answer
// has one of the list's types, so an older answer can come last. Requests are numbered here in
// the order they are asked for, and an answer to an older request than the view's last refetch
// is asked again.
import { useEffect, useMemo } from "react";
import { useQuery, type AnyVariables, type UseQueryArgs, type UseQueryState } from "urql";

let asked = 0;

/** useQuery that refetches whenever one of `refreshes` changes, and whose answer is always to a
 * request made after the last change (until it comes, the data is the last answer, `fetching`). */
export function useRefreshedQuery<Data, Variables extends AnyVariables>(
  args: UseQueryArgs<Variables, Data>,
  refreshes: readonly unknown[],
): UseQueryState<Data, Variables> {
  const context = useMemo(() => ({ asked: ++asked }), refreshes);
  const [result, reexecute] = useQuery<Data, Variables>({ ...args, context });
  const answered = (result.operation?.context as { asked?: number } | undefined)?.asked ?? 0;
  const stale = result.operation !== undefined && answered < context.asked;
  // Asked again once per older answer that came (not on urql's copies of the last answer marked
  // `stale` while a new request runs: asking then would cancel that request, again and again).
  useEffect(() => {
    if (stale && !result.fetching && !result.stale) reexecute({ requestPolicy: "network-only", asked: ++asked });
  }, [stale, result.fetching, result.stale, answered, reexecute]);
  return stale ? { ...result, fetching: true } : result;
}
