// The table "Restore points" (paginated; Export, Apply, Compare, Delete per row).
import { useMemo, useRef, useState } from "react";
import { useMutation, useQuery } from "urql";
import { DeleteRestorePoint, ExportRestorePoint, RestorePoints } from "./operations";
import type { RestorePointsQuery } from "./gql/graphql";
import { useSession } from "./session";
import { ApplyDialog } from "./ApplyDialog";
import { Errors, RoleButton, bytes, topLevel, when, type UserErrorShape } from "./ui";

const PAGE_SIZE = 20;
type Point = RestorePointsQuery["restorePoints"]["nodes"][number];

export function RestorePointsView() {
  const { reconnects, finished } = useSession();
  // The cursors of the pages before this one, to go back.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [deleted, setDeleted] = useState(0);
  const after = cursors[cursors.length - 1];
  const context = useMemo(() => ({ reconnects, finished, deleted }), [reconnects, finished, deleted]);
  const [list] = useQuery({ query: RestorePoints, variables: { first: PAGE_SIZE, after }, context });
  const [applying, setApplying] = useState<Point | null>(null);
  // While a refetch runs, the rows stay (with their state, e.g. a delete being confirmed).
  const page = useLast(list.data?.restorePoints, after);

  return (
    <section className="card" aria-labelledby="points-heading">
      <h2 id="points-heading">Restore points</h2>
      <p className="note" id="why-compare">
        Comparing two restore points is coming with diffs.
      </p>
      <Errors errors={topLevel(list.error)} />
      <div className="scroll">
        <table aria-labelledby="points-heading">
          <thead>
            <tr>
              <th scope="col">Label</th>
              <th scope="col">Created</th>
              <th scope="col">Origin</th>
              <th scope="col">Size</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {page?.nodes.map((point) => (
              <Row key={point.id} point={point} onApply={() => setApplying(point)} onDeleted={() => setDeleted((n) => n + 1)} />
            ))}
            {page && page.nodes.length === 0 && (
              <tr>
                <td colSpan={5}>No restore points yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <nav className="pager" aria-label="Restore point pages">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <span>
          {page ? `${(cursors.length - 1) * PAGE_SIZE + Math.min(1, page.nodes.length)}–${(cursors.length - 1) * PAGE_SIZE + page.nodes.length} of ${page.totalCount}` : "…"}
        </span>
        <button
          type="button"
          disabled={!page?.pageInfo.hasNextPage}
          onClick={() => page?.pageInfo.endCursor && setCursors([...cursors, page.pageInfo.endCursor])}
        >
          Older
        </button>
      </nav>
      {applying && <ApplyDialog point={applying} onClose={() => setApplying(null)} />}
    </section>
  );
}

function Row({ point, onApply, onDeleted }: { point: Point; onApply: () => void; onDeleted: () => void }) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [confirming, setConfirming] = useState(false);
  const [exported, doExport] = useMutation(ExportRestorePoint);
  const [, doDelete] = useMutation(DeleteRestorePoint);
  return (
    <tr>
      <th scope="row">
        {point.label}
        {point.note && <div className="note-text">{point.note}</div>}
        <Errors errors={errors} />
      </th>
      <td>{when(point.createdAt)}</td>
      <td>{point.origin.toLowerCase()}</td>
      <td>{bytes(point.sizeBytes)}</td>
      <td className="actions">
        <RoleButton
          needs="OPERATOR"
          disabled={exported.fetching}
          onClick={async () => {
            const answer = await doExport({ id: point.id });
            setErrors([...(answer.data?.exportRestorePoint.userErrors ?? []), ...topLevel(answer.error)]);
          }}
        >
          Export
        </RoleButton>
        <RoleButton needs="ADMIN" onClick={onApply}>
          Apply
        </RoleButton>
        <button type="button" disabled title="Coming with diffs" aria-describedby="why-compare">
          Compare
        </button>
        {confirming ? (
          <>
            <RoleButton
              needs="ADMIN"
              onClick={async () => {
                const answer = await doDelete({ id: point.id });
                const problems = [...(answer.data?.deleteRestorePoint.userErrors ?? []), ...topLevel(answer.error)];
                setErrors(problems);
                setConfirming(false);
                if (problems.length === 0) onDeleted();
              }}
            >
              Delete for good
            </RoleButton>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <RoleButton needs="ADMIN" onClick={() => setConfirming(true)}>
            Delete
          </RoleButton>
        )}
      </td>
    </tr>
  );
}

/** `value`, or while it is undefined (a refetch) the last value seen for the same `key`. */
function useLast<T>(value: T | undefined, key: unknown): T | undefined {
  const last = useRef<{ key: unknown; value: T } | null>(null);
  if (value !== undefined) last.current = { key, value };
  const kept = last.current;
  return value ?? (kept && kept.key === key ? kept.value : undefined);
}
