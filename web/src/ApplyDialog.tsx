// The dialog "Apply restore point": safety restore point (on by default), a typed APPLY, then
// live progress through the restart (operationProgress, the log, systemChanged).
import { useEffect, useRef, useState } from "react";
import { useMutation, useSubscription } from "urql";
import { ApplyRestorePoint, OperationProgress, SystemChanged } from "./operations";
import { ProgressBar, useLiveLog, type Op } from "./OperationsView";
import { Errors, LogView, topLevel, type UserErrorShape } from "./ui";

type Props = { point: { id: string; label: string }; onClose: () => void };

export function ApplyDialog({ point, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [safety, setSafety] = useState(true);
  const [typed, setTyped] = useState("");
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [started, setStarted] = useState<Op | null>(null);
  const [result, apply] = useMutation(ApplyRestorePoint);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  async function submit() {
    // The API's confirmation is the restore point's id: the person types APPLY, the page sends the id.
    const answer = await apply({ id: point.id, confirm: point.id, safety });
    const payload = answer.data?.applyRestorePoint;
    setErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
    if (payload?.operation) setStarted(payload.operation);
  }

  return (
    <dialog ref={dialog} aria-labelledby="apply-heading" onCancel={(e) => { if (started && !started.done) e.preventDefault(); else onClose(); }}>
      <h2 id="apply-heading">Apply restore point</h2>
      <p>
        Puts the configuration back as <strong>{point.label}</strong> captured it; the system restarts at the end.
      </p>
      {started ? (
        <ApplyProgress first={started} onClose={onClose} />
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (typed === "APPLY") void submit();
          }}
        >
          <label className="check">
            <input type="checkbox" checked={safety} onChange={(e) => setSafety(e.target.checked)} />
            Create a safety restore point first
          </label>
          <label htmlFor="apply-confirm">Type APPLY to confirm</label>
          <input
            id="apply-confirm"
            autoComplete="off"
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            aria-describedby="apply-errors"
          />
          <Errors errors={errors} id="apply-errors" />
          <div className="actions">
            <button type="submit" disabled={typed !== "APPLY" || result.fetching}>
              Apply
            </button>
            <button type="button" onClick={onClose}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

function ApplyProgress({ first, onClose }: { first: Op; onClose: () => void }) {
  const [progress] = useSubscription({ query: OperationProgress, variables: { id: first.id } });
  const [system] = useSubscription({ query: SystemChanged });
  const op = progress.data?.operationProgress ?? first;
  const lines = useLiveLog(first.id);
  const state = system.data?.systemChanged.state;
  return (
    <div>
      <p role="status" aria-live="polite">
        {op.done ? `The apply ${op.status === "SUCCEEDED" ? "succeeded" : "ended: " + op.status}.` : `System: ${state ?? "…"}${op.stage ? ` · ${op.stage}` : ""}`}
      </p>
      <ProgressBar op={op} />
      {op.error && <p className="error-text">{op.error.message} ({op.error.code})</p>}
      {progress.data?.operationProgress.safetyRestorePoint && (
        <p>Safety restore point: {progress.data.operationProgress.safetyRestorePoint.label}</p>
      )}
      <LogView follow lines={lines.slice(-200)} label="Log of the apply" />
      <button type="button" onClick={onClose} disabled={!op.done}>
        Close
      </button>
    </div>
  );
}
