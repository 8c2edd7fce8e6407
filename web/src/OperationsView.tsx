// "Running operations" (progress, stage, live log) and "Completed operations" as recent activity:
// one compact line each (Show log, Dismiss), routine prunes folded, "Dismiss all"; kept current by
// operationsChanged.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useClient, useMutation, useSubscription } from "urql";
import { DismissFinishedOperations, DismissOperation, OperationLog, Operations, OperationsChanged } from "./operations";
import type { OperationFieldsFragment } from "./gql/graphql";
import { useRefreshedQuery } from "./refresh";
import { Ago, Errors, RoleButton, pointLabel, topLevel, type UserErrorShape } from "./ui";
import { LogView, type LogLine } from "./LogView";

export type Op = OperationFieldsFragment;

const KIND: Record<string, string> = {
  CREATE_RESTORE_POINT: "Create restore point",
  EXPORT_RESTORE_POINT: "Export",
  IMPORT_LOCAL_COPY: "Import",
  APPLY_RESTORE_POINT: "Apply",
  UPLOAD_TO_LOCATION: "Upload to a location",
  FETCH_FROM_LOCATION: "Fetch from a location",
  PRUNE_RESTORE_POINTS: "Prune restore points",
  VERIFY_BACKUPS: "Verify backups",
};

export function describe(op: Op): string {
  const subject = (op.restorePoint && pointLabel(op.restorePoint.label)) ?? op.localCopy?.fileName;
  return `${KIND[op.kind] ?? op.kind}${subject ? `: ${subject}` : ""}`;
}

/** `first`: the operations list as read before any view asked for anything (App reads it with
 * `me`): what had ended by then is history; whatever ends after it is news, even when this
 * view's own first answer comes after the other views' (many requests start together). */
export function OperationsView({ onFinished, first = null }: { onFinished: () => void; first?: readonly Op[] | null }) {
  // Asked again each time the websocket connects only (the first time too: an operation that
  // ended between the first answer and the subscription's start is in no event): the events
  // tell of every other change. The subscribe messages go out before this request, as soon as
  // the connection is acknowledged.
  const [list] = useRefreshedQuery({ query: Operations }, ["connect"]);
  const [ops, setOps] = useState<Map<string, Op>>(() => withLater(new Map(), first ?? []));
  const finishedRef = useRef(onFinished);
  finishedRef.current = onFinished;
  // The operations whose end the views were told of (null until the first list: the ones
  // already ended then are history, not news).
  const ended = useRef<Set<string> | null>(first ? new Set(first.filter((op) => op.done).map((op) => op.id)) : null);

  // The list (first load, after a reconnect, refetched after a mutation) and the events say the
  // same things in no fixed order: an answer read before an event arrives after it, or the
  // other way round. Each operation keeps its later state, whichever told it.
  useEffect(() => {
    if (list.data) setOps((before) => withLater(before, list.data!.operations.nodes));
  }, [list.data]);
  // What a mutation answered (a dismiss): told here too, not only by the event, which is lost when
  // it happens before the subscription starts (and a dismissed operation is in no later list).
  const tell = useCallback((states: readonly Op[]) => setOps((before) => withLater(before, states)), []);
  useSubscription({ query: OperationsChanged }, (_prev: unknown, event) => {
    setOps((before) => withLater(before, [event.operationsChanged]));
    return event;
  });
  // An operation seen ended for the first time, by the list or by an event: the views refetch.
  useEffect(() => {
    if (ended.current === null) {
      if (!list.data) return;
      const seenByEvents = new Set([...ops.values()].filter((op) => op.done).map((op) => op.id));
      ended.current = new Set(list.data.operations.nodes.filter((op) => op.done && !seenByEvents.has(op.id)).map((op) => op.id));
    }
    let news = false;
    for (const op of ops.values()) {
      if (op.done && !ended.current.has(op.id)) {
        ended.current.add(op.id);
        news = true;
      }
    }
    if (news) finishedRef.current();
  }, [ops, list.data]);

  const all = [...ops.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  const running = all.filter((op) => !op.done);
  const completed = all.filter((op) => op.done && !op.dismissed);
  return (
    <>
      <section className="card" aria-labelledby="running-heading">
        <h2 id="running-heading" tabIndex={-1}>
          Running operations
        </h2>
        <Errors errors={topLevel(list.error)} />
        {running.length === 0 ? <p>None.</p> : <ul className="ops">{running.map((op) => <Running key={op.id} op={op} />)}</ul>}
      </section>
      <CompletedView completed={completed} tell={tell} />
    </>
  );
}

/** Whether a completed operation is routine: a prune that did its job (a failed one is news). */
const routine = (op: Op) => op.kind === "PRUNE_RESTORE_POINTS" && op.status === "SUCCEEDED";

type Tell = (states: readonly Op[]) => void;

function CompletedView({ completed, tell }: { completed: Op[]; tell: Tell }) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [dismissing, dismissAll] = useMutation(DismissFinishedOperations);
  const prunes = completed.filter(routine);
  const news = completed.filter((op) => !routine(op));
  return (
    <section className="card" aria-labelledby="completed-heading">
      <div className="card-head">
        <h2 id="completed-heading">Completed operations</h2>
        {completed.length > 0 && (
          // The events (dismissed: true) take each one off the list, as for a single Dismiss.
          <RoleButton
            needs="OPERATOR"
            className="secondary"
            disabled={dismissing.fetching}
            onClick={async () => {
              const answer = await dismissAll({});
              setErrors([...(answer.data?.dismissFinishedOperations.userErrors ?? []), ...topLevel(answer.error)]);
              const gone = new Set(answer.data?.dismissFinishedOperations.dismissedIds ?? []);
              tell(completed.filter((op) => gone.has(op.id)).map((op) => ({ ...op, dismissed: true })));
            }}
          >
            Dismiss all
          </RoleButton>
        )}
      </div>
      <Errors errors={errors} />
      {completed.length === 0 ? (
        <p>None.</p>
      ) : (
        <ul className="ops">
          {news.map((op) => (
            <Completed key={op.id} op={op} tell={tell} />
          ))}
          {prunes.length > 0 && (
            <li className="folded">
              <details>
                <summary>
                  {prunes.length} {prunes.length === 1 ? "prune" : "prunes"} (routine)
                </summary>
                <ul className="ops">
                  {prunes.map((op) => (
                    <Completed key={op.id} op={op} tell={tell} />
                  ))}
                </ul>
              </details>
            </li>
          )}
        </ul>
      )}
    </section>
  );
}

/** `before` with each of `states` unless it already holds a later state of that operation. */
function withLater(before: Map<string, Op>, states: readonly Op[]): Map<string, Op> {
  const next = new Map(before);
  for (const op of states) {
    const old = next.get(op.id);
    if (!old || !isEarlier(op, old)) next.set(op.id, op);
  }
  return next;
}

/** Whether `a` is an earlier state of the operation than `b`: an operation only moves on (to
 * done, then dismissed; its log and progress grow), so the one further along is the later. */
function isEarlier(a: Op, b: Op): boolean {
  const along = (op: Op) => [Number(op.done), Number(op.dismissed), op.lastSequence, op.progress];
  const [x, y] = [along(a), along(b)];
  const differs = x.findIndex((value, i) => value !== y[i]);
  return differs !== -1 && x[differs] < y[differs];
}

export function ProgressBar({ op }: { op: Op }) {
  const percent = Math.round(op.progress * 100);
  return (
    <div className="progress" role="progressbar" aria-label={`Progress of ${describe(op)}`} aria-valuemin={0}
         aria-valuemax={100} aria-valuenow={percent} aria-valuetext={`${percent}%${op.stage ? `, ${op.stage}` : ""}`}>
      <div style={{ width: `${percent}%` }} />
    </div>
  );
}

// Lines already shown, per operation: a remount or a resubscription after a reconnect goes
// on after the last sequence seen instead of starting over.
const seenLogs = new Map<string, LogLine[]>();

/** The operation's log as it is written: stored lines, then live ones, without duplicates.
 * Lines that arrive together (a long stored log comes at once) are added once per frame. */
export function useLiveLog(id: string): LogLine[] {
  const [lines, setLines] = useState<LogLine[]>(() => seenLogs.get(id) ?? []);
  const after = useMemo(() => (seenLogs.get(id) ?? []).at(-1)?.sequence ?? 0, [id]);
  const pending = useRef<LogLine[]>([]);
  const frame = useRef<number | null>(null);
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
    frame.current = null;
  }, []);
  // The client's subscription directly, not useSubscription: that would render the component
  // once per line (10,000 renders for a long log); here a frame's lines make one render.
  const client = useClient();
  useEffect(() => {
    const { unsubscribe } = client.subscription(OperationLog, { id, after }).subscribe((result) => {
      const line = result.data?.operationLog;
      if (!line) return;
      pending.current.push(line);
      frame.current ??= requestAnimationFrame(() => {
        frame.current = null;
        const batch = pending.current;
        pending.current = [];
        setLines((before) => {
          // graphql-ws resubscribes with the first variables after a reconnect: skip what was seen.
          let last = before.at(-1)?.sequence ?? 0;
          const fresh = batch.filter((entry) => entry.sequence > last && ((last = entry.sequence), true));
          if (fresh.length === 0) return before;
          const next = before.concat(fresh);
          seenLogs.set(id, next);
          return next;
        });
      });
    });
    return unsubscribe;
  }, [client, id, after]);
  return lines;
}

function Running({ op }: { op: Op }) {
  const lines = useLiveLog(op.id);
  return (
    <li className="op">
      <p>
        <strong>{describe(op)}</strong> <span className="status">{op.status}</span>
        {op.stage && <span className="stage"> · {op.stage}</span>}
      </p>
      <ProgressBar op={op} />
      <LogView follow lines={lines} label={`Log of ${describe(op)}`} />
    </li>
  );
}

function Completed({ op, tell }: { op: Op; tell: Tell }) {
  const [showLog, setShowLog] = useState(false);
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [, dismiss] = useMutation(DismissOperation);
  return (
    <li className={`op done compact status-${op.status.toLowerCase()}`}>
      <p>
        <strong>{describe(op)}</strong> <span className="status">{op.status}</span>
        {op.finishedAt && (
          <span>
            {" "}
            · <Ago iso={op.finishedAt} />
          </span>
        )}
        <span className="row-actions">
          <button type="button" className="small secondary" aria-expanded={showLog} onClick={() => setShowLog(!showLog)}>
            Show log
          </button>
          <RoleButton
            needs="OPERATOR"
            className="small secondary"
            onClick={async () => {
              const answer = await dismiss({ id: op.id });
              setErrors([...(answer.data?.dismissOperation.userErrors ?? []), ...topLevel(answer.error)]);
              const dismissed = answer.data?.dismissOperation.operation;
              if (dismissed) tell([dismissed]);
            }}
          >
            Dismiss
          </RoleButton>
        </span>
      </p>
      {op.error && <p className="error-text">{op.error.message} ({op.error.code})</p>}
      <Errors errors={errors} />
      {showLog && <StoredLogView op={op} />}
    </li>
  );
}

function StoredLogView({ op }: { op: Op }) {
  // Through operationLog, not Operation.log: the query gives at most 1,000 lines a page, the
  // subscription sends every stored line and then completes (the operation is finished).
  const lines = useLiveLog(op.id);
  return (
    <>
      {/* By the last number, not the count: a crash leaves a gap in the numbers. */}
      {(lines.at(-1)?.sequence ?? 0) < op.lastSequence && (
        <p role="status">Loading the log… {lines.length} lines so far</p>
      )}
      <LogView lines={lines} label={`Log of ${describe(op)}`} />
    </>
  );
}
