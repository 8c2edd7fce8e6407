// The dialog "Apply restore point": the preview of what will change (applyPreview) for the
// sources chosen, safety restore point (on by default), a typed APPLY, then live progress
// through the restart (operationProgress, the log, systemChanged) and the report of what changed.
// The apply sends the preview's fingerprint: if the configuration changed since, it is refused
// (CONFLICT) and the preview is read again. Given `restoring` (Restore in the dialog "Browse
// restore point", "Restore this" in a comparison or this dialog's preview), it puts back just those
// items (applyPreview and applyRestorePoint `items:`).
import { useEffect, useRef, useState } from "react";
import { useMutation, useQuery, useSubscription } from "urql";
import { ApplyPreview, ApplyRestorePoint, OperationProgress, Sources, SystemChanged } from "./operations";
import { DiffView, summaryText } from "./DiffView";
import { useRefreshedQuery } from "./refresh";
import { ProgressBar, useLiveLog, type Op } from "./OperationsView";
import { pointLabel, Errors, topLevel, type UserErrorShape } from "./ui";
import { LogView } from "./LogView";
import type { Restoring } from "./BrowseDialog";

/** `onRestore`: "Restore this" on a change of a whole apply's preview (an item restore has none). */
type Props = { point: { id: string; label: string }; restoring?: Restoring; onRestore?: (restoring: Restoring) => void; onClose: () => void };

export function ApplyDialog({ point, restoring, onRestore, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [safety, setSafety] = useState(true);
  const [typed, setTyped] = useState("");
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [started, setStarted] = useState<Op | null>(null);
  const [result, apply] = useMutation(ApplyRestorePoint);
  const [sourceList] = useQuery({ query: Sources });
  const allSources = sourceList.data?.sources.map((source) => source.name) ?? [];
  // null: every source (the API's default); else only these.
  const [chosen, setChosen] = useState<string[] | null>(null);
  const items = restoring?.items ?? null;
  // Read again when the apply is refused as CONFLICT only (not as operations end: the preview
  // stays what the person is looking at).
  const [preview, readPreviewAgain] = useRefreshedQuery({ query: ApplyPreview, variables: { id: point.id, sources: chosen, items } }, []);
  const previewReady = !preview.fetching && (preview.data !== undefined || preview.error !== undefined);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  async function submit() {
    // The API's confirmation is the restore point's id: the person types APPLY, the page sends the id.
    const fingerprint = preview.data?.applyPreview.fingerprint ?? null;
    const answer = await apply({ id: point.id, confirm: point.id, safety, sources: chosen, items, fingerprint });
    const payload = answer.data?.applyRestorePoint;
    setErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
    // The configuration changed since the preview: show the new one before anything is applied.
    if (payload?.userErrors.some((e) => e.code === "CONFLICT")) readPreviewAgain();
    if (payload?.operation) setStarted(payload.operation);
  }

  return (
    <dialog ref={dialog} aria-labelledby="apply-heading" onCancel={(e) => { if (started && !started.done) e.preventDefault(); else onClose(); }}>
      <h2 id="apply-heading">Apply restore point</h2>
      {restoring ? (
        <p>
          Puts back <strong>{restoring.what}</strong> as <strong>{pointLabel(point.label)}</strong> captured it; everything else stays as it
          is now{restoring.restarts ? "; the system restarts at the end" : " (no restart)"}.
        </p>
      ) : (
        <p>
          Puts the configuration back as <strong>{pointLabel(point.label)}</strong> captured it; the system restarts at the end.
        </p>
      )}
      {started ? (
        <ApplyProgress first={started} onClose={onClose} />
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (typed === "APPLY") void submit();
          }}
        >
          {!restoring && allSources.length > 1 && (
            <fieldset>
              <legend>Sources to apply</legend>
              {allSources.map((name) => (
                <label className="check" key={name}>
                  <input
                    type="checkbox"
                    checked={chosen === null || chosen.includes(name)}
                    onChange={(e) => {
                      const now = chosen ?? allSources;
                      const next = e.target.checked ? [...now, name] : now.filter((n) => n !== name);
                      setChosen(next.length === allSources.length ? null : allSources.filter((n) => next.includes(n)));
                    }}
                  />
                  Apply source {name}
                </label>
              ))}
            </fieldset>
          )}
          <h3>What will change</h3>
          <Errors errors={topLevel(preview.error)} />
          {!previewReady && <p role="status">Reading the preview…</p>}
          {previewReady && preview.data && (
            <DiffView
              diff={preview.data.applyPreview}
              label="Changes the apply makes"
              restore={!restoring && onRestore ? { from: point.label, onRestore } : undefined}
            />
          )}
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
            <button type="submit" disabled={typed !== "APPLY" || result.fetching || !previewReady || chosen?.length === 0}>
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
        <p>Safety restore point: {pointLabel(progress.data.operationProgress.safetyRestorePoint.label)}</p>
      )}
      {op.done && progress.data?.operationProgress.changes && (
        <section aria-label="Report of the apply">
          <h3>What changed</h3>
          <p>{summaryText(progress.data.operationProgress.changes)} (the log lists the changed paths).</p>
        </section>
      )}
      <LogView follow lines={lines} label="Log of the apply" />
      <button type="button" onClick={onClose} disabled={!op.done}>
        Close
      </button>
    </div>
  );
}
