// The dialog "Compare restore points": this restore point against another of the page (the next
// older one by default), what changed going from the older to the newer. Per change, "Restore this"
// (admin) opens the apply dialog for just that item as the newer one (the comparison's `to`) has it.
import { useEffect, useId, useRef, useState } from "react";
import { useQuery } from "urql";
import { CompareRestorePoints } from "./operations";
import { DiffView } from "./DiffView";
import type { Restoring } from "./BrowseDialog";
import { pointLabel, Errors, topLevel, when } from "./ui";

type Point = { id: string; label: string; createdAt: string };

type Props = { point: Point; others: Point[]; onRestore: (point: Point, restoring: Restoring) => void; onClose: () => void };

export function CompareDialog({ point, others, onRestore, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const id = useId();
  const candidates = others.filter((p) => p.id !== point.id);
  const older = candidates.find((p) => p.createdAt < point.createdAt) ?? candidates[0];
  const [otherId, setOtherId] = useState(older?.id ?? "");
  const other = candidates.find((p) => p.id === otherId);
  // From the older to the newer: "added" means the newer has it.
  const [from, to] = other && other.createdAt > point.createdAt ? [point, other] : [other, point];
  const [answer] = useQuery({ query: CompareRestorePoints, variables: { from: from?.id ?? "", to: to?.id ?? "" }, pause: !other });

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);

  return (
    <dialog ref={dialog} aria-labelledby={`${id}-heading`} onCancel={onClose}>
      <h2 id={`${id}-heading`}>Compare restore points</h2>
      {candidates.length === 0 ? (
        <p>There is no other restore point on this page to compare with.</p>
      ) : (
        <>
          <label htmlFor={`${id}-other`}>Compare {pointLabel(point.label)} with</label>
          <select id={`${id}-other`} value={otherId} onChange={(e) => setOtherId(e.target.value)}>
            {candidates.map((p) => (
              <option key={p.id} value={p.id}>
                {pointLabel(p.label)} ({when(p.createdAt)})
              </option>
            ))}
          </select>
          {from && to && (
            <p>
              From <strong>{pointLabel(from.label)}</strong> to <strong>{pointLabel(to.label)}</strong>. Restore this puts back one item as{" "}
              <strong>{pointLabel(to.label)}</strong> has it:
            </p>
          )}
          <Errors errors={topLevel(answer.error)} />
          {answer.fetching && <p role="status">Comparing…</p>}
          {answer.data && !answer.fetching && (
            <DiffView
              diff={answer.data.compareRestorePoints}
              label="Changes between the restore points"
              restore={to ? { from: to.label, onRestore: (restoring) => onRestore(to, restoring) } : undefined}
            />
          )}
        </>
      )}
      <div className="actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </dialog>
  );
}
