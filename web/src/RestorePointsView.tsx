// "Create restore point" beside the heading, then the table "Restore points" (paginated and filtered; per row Apply, the primary action, then
// Browse, Compare, Export, Pin/Unpin and Edit for the label and note, and Delete, styled as dangerous).
import { useLayoutEffect, useRef, useState } from "react";
import { useMutation } from "urql";
import { DeleteRestorePoint, ExportRestorePoint, RestorePoints, UpdateRestorePoint } from "./operations";
import type { RestorePointOrigin, RestorePointsQuery } from "./gql/graphql";
import { useKept, useRefreshedQuery } from "./refresh";
import { ApplyDialog } from "./ApplyDialog";
import { CreateForm } from "./CreateForm";
import { BrowseDialog, type Restoring } from "./BrowseDialog";
import { CompareDialog } from "./CompareDialog";
import { Ago, DeleteTwice, Errors, RoleButton, bytes, inWords, pointLabel, topLevel, when, type UserErrorShape } from "./ui";

const PAGE_SIZES = [20, 50, 100];
const ORIGINS = ["MANUAL", "SCHEDULED", "IMPORTED", "SAFETY"] as const;
type Point = RestorePointsQuery["restorePoints"]["nodes"][number];

export function RestorePointsView() {
  // The cursors of the pages before this one, to go back.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [PAGE_SIZE, setPageSize] = useState(PAGE_SIZES[0]);
  // Filters (the server's): origin, pinned only, a search in labels and notes.
  const [origin, setOrigin] = useState<RestorePointOrigin | "">("");
  const [pinnedOnly, setPinnedOnly] = useState(false);
  const [search, setSearch] = useState("");
  const after = cursors[cursors.length - 1];
  const variables = {
    first: PAGE_SIZE,
    after,
    origin: origin ? [origin] : null,
    pinned: pinnedOnly ? true : null,
    search: search.trim() || null,
  };
  const [list, refresh] = useRefreshedQuery({ query: RestorePoints, variables });
  const [applying, setApplying] = useState<Point | null>(null);
  const [comparing, setComparing] = useState<Point | null>(null);
  const [browsing, setBrowsing] = useState<Point | null>(null);
  // Restore in the browse dialog, "Restore this" in the compare dialog or a whole apply's preview:
  // the apply dialog for those items of that restore point, over the dialog it came from.
  const [restoring, setRestoring] = useState<{ point: { id: string; label: string }; restoring: Restoring } | null>(null);
  // Exports are encrypted (age) to the server's key and the recovery recipients when asked.
  const [encrypt, setEncrypt] = useState(false);
  useRenderTiming(list.data);
  // While a refetch runs, the rows stay (with their state, e.g. a delete being confirmed).
  const page = useKept(list.data?.restorePoints, after);

  return (
    <section className="card" aria-labelledby="points-heading">
      <div className="card-head">
        <h2 id="points-heading" tabIndex={-1}>
          Restore points
        </h2>
        <CreateForm />
      </div>
      <Errors errors={topLevel(list.error)} />
      <div className="filters" role="group" aria-label="Filter restore points">
        <label className="inline" htmlFor="points-search">
          Search
        </label>
        <input
          id="points-search"
          type="search"
          placeholder="label or note"
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
            setCursors([null]);
          }}
        />
        <label className="inline" htmlFor="points-origin">
          Origin
        </label>
        <select
          id="points-origin"
          value={origin}
          onChange={(e) => {
            setOrigin(e.target.value as RestorePointOrigin | "");
            setCursors([null]);
          }}
        >
          <option value="">any</option>
          {ORIGINS.map((o) => (
            <option key={o} value={o}>
              {o.toLowerCase()}
            </option>
          ))}
        </select>
        <label className="inline">
          <input
            type="checkbox"
            checked={pinnedOnly}
            onChange={(e) => {
              setPinnedOnly(e.target.checked);
              setCursors([null]);
            }}
          />{" "}
          Pinned only
        </label>
        <label className="inline">
          <input type="checkbox" checked={encrypt} onChange={(e) => setEncrypt(e.target.checked)} /> Encrypt exports
        </label>
      </div>
      <div className="scroll">
        <table aria-labelledby="points-heading">
          <thead>
            <tr>
              <th scope="col">Label</th>
              <th scope="col">Created</th>
              <th scope="col">Origin</th>
              <th scope="col">Size</th>
              <th scope="col">Copies at</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {page?.nodes.map((point) => (
              <Row
                key={point.id}
                point={point}
                encrypt={encrypt}
                onApply={() => setApplying(point)}
                onCompare={() => setComparing(point)}
                onBrowse={() => setBrowsing(point)}
                onDeleted={refresh}
                onChanged={refresh}
              />
            ))}
            {page && page.nodes.length === 0 && (
              <tr>
                <td colSpan={6}>No restore points yet.</td>
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
        <label className="inline" htmlFor="page-size">
          Per page
        </label>
        <select
          id="page-size"
          value={PAGE_SIZE}
          onChange={(e) => {
            setPageSize(Number(e.target.value));
            setCursors([null]);
          }}
        >
          {PAGE_SIZES.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </nav>
      {applying && (
        <ApplyDialog
          point={applying}
          // The whole apply's dialog gives way to the item's (one apply dialog at a time).
          onRestore={(items) => {
            setApplying(null);
            setRestoring({ point: applying, restoring: items });
          }}
          onClose={() => setApplying(null)}
        />
      )}
      {browsing && (
        <BrowseDialog
          browsed={{ kind: "restorePoint", id: browsing.id, label: browsing.label }}
          onRestore={(items) => setRestoring({ point: browsing, restoring: items })}
          onClose={() => setBrowsing(null)}
        />
      )}
      {comparing && (
        <CompareDialog
          point={comparing}
          others={page?.nodes ?? []}
          onRestore={(point, items) => setRestoring({ point, restoring: items })}
          onClose={() => setComparing(null)}
        />
      )}
      {restoring && <ApplyDialog point={restoring.point} restoring={restoring.restoring} onClose={() => setRestoring(null)} />}
    </section>
  );
}

function Row({
  point,
  encrypt,
  onApply,
  onCompare,
  onBrowse,
  onDeleted,
  onChanged,
}: {
  point: Point;
  encrypt: boolean;
  onApply: () => void;
  onCompare: () => void;
  onBrowse: () => void;
  onDeleted: () => void;
  onChanged: () => void;
}) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [editing, setEditing] = useState(false);
  const [, doUpdate] = useMutation(UpdateRestorePoint);
  const update = async (changes: { label?: string; note?: string | null; pinned?: boolean }) => {
    const answer = await doUpdate({ id: point.id, ...changes });
    const problems = [...(answer.data?.updateRestorePoint.userErrors ?? []), ...topLevel(answer.error)];
    setErrors(problems);
    if (problems.length === 0) onChanged();
    return problems.length === 0;
  };
  const [exported, doExport] = useMutation(ExportRestorePoint);
  const [, doDelete] = useMutation(DeleteRestorePoint);
  return (
    <tr id={`point-${point.id}`} tabIndex={-1}>
      <th scope="row">
        {editing ? (
          <EditForm point={point} errors={errors} onCancel={() => setEditing(false)} onSave={async (label, note) => {
            if (await update({ label, note })) setEditing(false);
          }} />
        ) : (
          <>
            <PointLabel label={point.label} />
            {point.pinned && <span className="note-text"> (pinned)</span>}
            {point.expiresAt && (
              <div className="note-text" title={when(point.expiresAt)}>
                {point.pinned ? `expiry ${when(point.expiresAt)} (kept while pinned)` : `expires ${inWords(point.expiresAt)}`}
              </div>
            )}
            {point.note && <div className="note-text">{point.note}</div>}
            <VerificationState verification={point.verification} />
            <Errors errors={errors} />
          </>
        )}
      </th>
      <td data-label="Created">{when(point.createdAt)}</td>
      <td data-label="Origin">{point.origin.toLowerCase()}</td>
      <td data-label="Size">{bytes(point.sizeBytes)}</td>
      <td data-label="Copies at"><CopiesAt known={point.remoteCopies.map((c) => c.location.name)} unknown={point.remoteCopiesUnknownAt} /></td>
      <td className="actions">
        <RoleButton needs="ADMIN" onClick={onApply}>
          Apply
        </RoleButton>
        <button type="button" className="secondary" onClick={onBrowse}>
          Browse
        </button>
        <button type="button" className="secondary" onClick={onCompare}>
          Compare
        </button>
        <RoleButton
          needs="OPERATOR"
          className="secondary"
          disabled={exported.fetching}
          onClick={async () => {
            const answer = await doExport({ id: point.id, encrypt });
            setErrors([...(answer.data?.exportRestorePoint.userErrors ?? []), ...topLevel(answer.error)]);
          }}
        >
          Export
        </RoleButton>
        <RoleButton needs="ADMIN" className="secondary" onClick={() => update({ pinned: !point.pinned })}>
          {point.pinned ? "Unpin" : "Pin"}
        </RoleButton>
        <RoleButton needs="ADMIN" className="secondary" disabled={editing} onClick={() => setEditing(true)}>
          Edit
        </RoleButton>
        <DeleteTwice
          onDelete={async () => {
            const answer = await doDelete({ id: point.id });
            const problems = [...(answer.data?.deleteRestorePoint.userErrors ?? []), ...topLevel(answer.error)];
            setErrors(problems);
            if (problems.length === 0) onDeleted();
          }}
        />
      </td>
    </tr>
  );
}

/** Performance marks: "restore-points-data" when a list arrives, the measure "restore-points-render"
 * up to its rows in the DOM and "restore-points-painted" up to the next frame (the browser test
 * reads them; they cost nothing otherwise). */
function useRenderTiming(data: unknown) {
  const seen = useRef<unknown>(undefined);
  if (data !== undefined && data !== seen.current) {
    seen.current = data;
    performance.mark("restore-points-data");
  }
  useLayoutEffect(() => {
    if (data === undefined) return;
    performance.measure("restore-points-render", "restore-points-data");
    requestAnimationFrame(() => setTimeout(() => performance.measure("restore-points-painted", "restore-points-data"), 0));
  }, [data]);
}

function EditForm({
  point,
  errors,
  onSave,
  onCancel,
}: {
  point: Point;
  errors: (UserErrorShape | string)[];
  onSave: (label: string, note: string | null) => void;
  onCancel: () => void;
}) {
  const [label, setLabel] = useState(point.label);
  const [note, setNote] = useState(point.note ?? "");
  const id = `edit-${point.id}`;
  const about = (field: string) => errors.filter((e) => typeof e !== "string" && e.field === field);
  return (
    <form
      aria-label={`Edit ${point.label}`}
      onSubmit={(event) => {
        event.preventDefault();
        onSave(label, note.trim() ? note : null);
      }}
    >
      <label htmlFor={`${id}-label`}>Label</label>
      <input id={`${id}-label`} value={label} onChange={(e) => setLabel(e.target.value)} />
      <Errors errors={about("label")} />
      <label htmlFor={`${id}-note`}>Note</label>
      <input id={`${id}-note`} value={note} onChange={(e) => setNote(e.target.value)} />
      <Errors errors={[...about("note"), ...errors.filter((e) => typeof e === "string" || (e.field !== "label" && e.field !== "note"))]} />
      <button type="submit">Save</button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}

/** A restore point's label in words; a safety restore point's old label (with the applied one's
 * id) keeps it on hover. */
function PointLabel({ label }: { label: string }) {
  const words = pointLabel(label);
  return words === label ? <>{label}</> : <span title={label}>{words}</span>;
}

/** "Copies at": the locations that hold a copy, then each one that could not be listed just
 * now, as not known (an off-site copy must not look gone while its location is unreachable). */
function CopiesAt({ known, unknown }: { known: string[]; unknown: string[] }) {
  const holding = [...new Set(known)];
  if (holding.length === 0 && unknown.length === 0) return <>none</>;
  return (
    <>
      {holding.join(", ")}
      {unknown.map((name, index) => (
        <span key={name} className="note-text" title={`Location ${name} could not be listed just now`}>
          {holding.length > 0 || index > 0 ? ", " : ""}
          {name}: unknown (location unreachable)
        </span>
      ))}
    </>
  );
}


type VerificationShape = { state: string; verifiedAt: string; problems: readonly string[]; repaired: number } | null | undefined;

/** A restore point's last verification: "verified ... ago" when OK, else its state and each
 * problem (the source and path of a damaged or missing item). Nothing until first verified. */
function VerificationState({ verification }: { verification: VerificationShape }) {
  if (!verification) return null;
  if (verification.state === "OK")
    return (
      <div className="note-text">
        verified <Ago iso={verification.verifiedAt} />
        {verification.repaired > 0 && ` (${verification.repaired} repaired from a copy)`}
      </div>
    );
  return (
    <div className="error-text" role="note" aria-label="Verification">
      <strong>{verification.state}</strong> (verified <Ago iso={verification.verifiedAt} />)
      <ul>
        {verification.problems.map((problem) => (
          <li key={problem}>{problem}</li>
        ))}
      </ul>
    </div>
  );
}
