// The page's two hooks for what changes under it: useRefreshedQuery, the one way a view asks for
// something an operation, a reconnect or the view's own change may have changed, and useKept,
// the one way a view keeps showing the last answer while the next is read.
//
// Each refetch must be answered by a request made after it was asked for. urql does not promise
// that: a request for the same query and variables as one already in flight (another view's,
// or an earlier refetch's) joins it, and gets its answer, read before the change; and its
// document cache asks again for a list, in parallel, after each mutation or event whose answer
// has one of the list's types, so an older answer can come last. Requests are numbered here in
// the order they are asked for, and an answer to an older request than the view's last refetch
// is asked again.
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { useQuery, type AnyVariables, type UseQueryArgs, type UseQueryState } from "urql";
import { useSession } from "./session";

let asked = 0;

/** What, besides the view's own `refresh()`, makes a query ask again: the websocket connecting,
 * the first time too (for a list kept up to date by events: what changed between its first answer
 * and the subscription's start was told to nobody), the websocket reconnecting (events may have
 * been missed) and an operation ending (its result may be in the answer). */
export type RefetchOn = "connect" | "reconnect" | "finished";

const CHANGES: readonly RefetchOn[] = ["reconnect", "finished"];

/** useQuery that asks again on each of `on` and on each `refresh()`, and whose answer is always to
 * a request made after the last of them (until it comes, the data is the last answer, `fetching`). */
export function useRefreshedQuery<Data, Variables extends AnyVariables>(
  args: UseQueryArgs<Variables, Data>,
  on: readonly RefetchOn[] = CHANGES,
): [UseQueryState<Data, Variables>, () => void] {
  const { connects, reconnects, finished } = useSession();
  const [changed, setChanged] = useState(0);
  const refresh = useCallback(() => setChanged((n) => n + 1), []);
  const context = useMemo(
    () => ({ asked: ++asked }),
    [on.includes("connect") && connects, on.includes("reconnect") && reconnects, on.includes("finished") && finished, changed],
  );
  const [result, reexecute] = useQuery<Data, Variables>({ ...args, context });
  const answered = (result.operation?.context as { asked?: number } | undefined)?.asked ?? 0;
  const stale = result.operation !== undefined && answered < context.asked;
  // Asked again once per older answer that came (not on urql's copies of the last answer marked
  // `stale` while a new request runs: asking then would cancel that request, again and again).
  useEffect(() => {
    if (stale && !result.fetching && !result.stale) reexecute({ requestPolicy: "network-only", asked: ++asked });
  }, [stale, result.fetching, result.stale, answered, reexecute]);
  return [stale ? { ...result, fetching: true } : result, refresh];
}

/** `value`, or while it is undefined (a refetch under way) the last value seen for the same `key`:
 * a list stays on screen, with its rows' state (a delete being confirmed, a log shown), while it
 * is read again; under another key (another page of a list) nothing is shown until it comes. */
export function useKept<T>(value: T | undefined, key: unknown = null): T | undefined {
  // Remembered once rendered (no state: a new list renders once, not twice).
  const last = useRef<{ value: T; key: unknown } | null>(null);
  useLayoutEffect(() => {
    if (value !== undefined) last.current = { value, key };
  }, [value, key]);
  if (value !== undefined) return value;
  return last.current !== null && Object.is(last.current.key, key) ? last.current.value : undefined;
}
