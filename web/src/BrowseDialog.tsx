// The dialogs "Browse restore point" and "Browse local copy": what a restore point (read from its
// manifest by RestorePoint.items) or a local copy (read from the file by LocalCopy.items, without
// importing it) holds, one folder at a time (the table "Items"), starting at its own sources, with
// a breadcrumb back up. Per item: Download (a signed link, like a local copy's) and, for a restore
// point, Restore (the apply dialog with just that item: its preview, the safety restore point, the
// typed APPLY); a copy's items cannot be applied before the copy is imported.
import { useEffect, useId, useRef, useState } from "react";
import { useMutation, useQuery } from "urql";
import { BrowsedItems, BrowsedSources, CreateItemDownloadUrl, Sources } from "./operations";
import type { ItemSelection, ItemsPageFragment } from "./gql/graphql";
import { useRefreshedQuery } from "./refresh";
import { pointLabel, Errors, RoleButton, bytes, topLevel, when, type UserErrorShape } from "./ui";

// The API's largest page (BACKUPS_MAX_PAGE_SIZE's default): a big folder loads 100 at a time.
const PAGE_SIZE = 100;

type Item = ItemsPageFragment["nodes"][number];
/** What the dialog browses: a restore point, or a local copy (which has no Restore). */
export type Browsed = { kind: "restorePoint" | "localCopy"; id: string; label: string };
/** Where the dialog is: the sources (source null), a source's top level (path null), or a folder. */
type Place = { source: string | null; path: string | null };
/** What the apply dialog puts back: the items, and how the dialog names them. */
export type Restoring = { items: ItemSelection[]; what: string; restarts: boolean };

/** `onRestore`: a restore point's Restore of one item (a copy's items have none). */
type Props = { browsed: Browsed; onRestore?: (restoring: Restoring) => void; onClose: () => void };

export function BrowseDialog({ browsed, onRestore, onClose }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const here = useRef<HTMLSpanElement>(null);
  const id = useId();
  const [place, setPlace] = useState<Place>({ source: null, path: null });
  // The cursors of the pages shown in this folder ("Load more" adds the next one).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [moved, setMoved] = useState(false);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);
  // The button that opened a folder is gone with the rows: the focus goes to where the dialog is now.
  useEffect(() => {
    if (moved) here.current?.focus();
  }, [place, moved]);

  function go(next: Place) {
    setPlace(next);
    setCursors([null]);
    setMoved(true);
  }

  const source = place.source;
  const copy = browsed.kind === "localCopy";
  // A copy's item is put back once the copy is a restore point: Restore says so and stays disabled.
  const restore: RestoreAction = !copy && onRestore ? { onRestore } : { refusal: `${id}-no-restore` };
  const crumbs: { name: string; place: Place }[] = [{ name: "Sources", place: { source: null, path: null } }];
  if (place.source !== null) {
    crumbs.push({ name: place.source, place: { source: place.source, path: null } });
    const parts = place.path?.split("/") ?? [];
    parts.forEach((part, index) => crumbs.push({ name: part, place: { source: place.source, path: parts.slice(0, index + 1).join("/") } }));
  }

  return (
    <dialog ref={dialog} className="wide" aria-labelledby={`${id}-heading`} onCancel={onClose}>
      <h2 id={`${id}-heading`}>{copy ? "Browse local copy" : "Browse restore point"}</h2>
      {copy ? (
        <p>
          What <strong>{pointLabel(browsed.label)}</strong> holds, read from the copy. Open a folder by its name.{" "}
          <span id={`${id}-no-restore`}>Import the copy first</span> to restore an item.
        </p>
      ) : (
        <p>
          What <strong>{pointLabel(browsed.label)}</strong> holds. Open a folder by its name; Restore puts back just that item.
        </p>
      )}
      <nav aria-label="Breadcrumb">
        <ol className="crumbs">
          {crumbs.map((crumb, index) => (
            <li key={index}>
              {index === crumbs.length - 1 ? (
                <span ref={here} tabIndex={-1} aria-current="location">
                  {crumb.name}
                </span>
              ) : (
                <button type="button" className="link" onClick={() => go(crumb.place)}>
                  {crumb.name}
                </button>
              )}
            </li>
          ))}
        </ol>
      </nav>
      <div className="scroll">
        <table aria-label="Items">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {source === null ? (
              <SourceRows browsed={browsed} onOpen={(name) => go({ source: name, path: null })} />
            ) : (
              cursors.map((after, index) => (
                <ItemRows
                  key={`${source}/${place.path ?? ""}/${after ?? ""}`}
                  browsed={browsed}
                  source={source}
                  path={place.path}
                  after={after}
                  last={index === cursors.length - 1}
                  onOpen={(item) => go({ source: item.source, path: item.path })}
                  onMore={(cursor) => setCursors([...cursors, cursor])}
                  restore={restore}
                />
              ))
            )}
          </tbody>
        </table>
      </div>
      <div className="actions">
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </dialog>
  );
}

/** The top of the breadcrumb: the sources the restore point or copy holds entries of (its own,
 * configured here or not; the kind shown is the configured source's, when there is one). */
function SourceRows({ browsed, onOpen }: { browsed: Browsed; onOpen: (source: string) => void }) {
  // What it holds never changes: read once, not again as operations end.
  const [held] = useRefreshedQuery({ query: BrowsedSources, variables: { id: browsed.id, copy: browsed.kind === "localCopy" } }, []);
  const [configured] = useQuery({ query: Sources });
  const names = (browsed.kind === "localCopy" ? held.data?.localCopy : held.data?.restorePoint)?.sources;
  const kinds = new Map(configured.data?.sources.map((source) => [source.name, source.kind]));
  return (
    <>
      {held.error && (
        <tr>
          <td colSpan={5}>
            <Errors errors={topLevel(held.error)} />
          </td>
        </tr>
      )}
      {held.fetching && !names && (
        <tr>
          <td colSpan={5} role="status">
            Reading the sources…
          </td>
        </tr>
      )}
      {names?.map((name) => <SourceRow key={name} browsed={browsed} source={{ name, kind: kinds.get(name) ?? null }} onOpen={onOpen} />)}
    </>
  );
}

/** A source at the top of the breadcrumb: opens on its name; Download gives all of it (path ""). */
function SourceRow({ browsed, source, onOpen }: { browsed: Browsed; source: { name: string; kind: string | null }; onOpen: (source: string) => void }) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  return (
    <tr>
      <th scope="row">
        <button type="button" className="link" onClick={() => onOpen(source.name)}>
          {source.name}
        </button>
        <Errors errors={errors} />
      </th>
      <td data-label="Kind">{source.kind ? `source (${source.kind.toLowerCase()})` : "source"}</td>
      <td data-label="Size">—</td>
      <td data-label="Modified">—</td>
      <td className="actions">
        <DownloadButton browsed={browsed} source={source.name} path="" onErrors={setErrors} />
      </td>
    </tr>
  );
}

/** One page of a folder's items, and "Load more" under the last page while there are more. */
/** Restore on an item: a restore point's opens the apply dialog; a copy's is disabled, described by
 * the element `refusal` (why). */
type RestoreAction = { onRestore: (restoring: Restoring) => void } | { refusal: string };

function ItemRows({
  browsed,
  source,
  path,
  after,
  last,
  onOpen,
  onMore,
  restore,
}: {
  browsed: Browsed;
  source: string;
  path: string | null;
  after: string | null;
  last: boolean;
  onOpen: (item: Item) => void;
  onMore: (cursor: string) => void;
  restore: RestoreAction;
}) {
  // A restore point's (or copy's) items never change: read once, not again as operations end.
  const copy = browsed.kind === "localCopy";
  const [answer] = useRefreshedQuery(
    { query: BrowsedItems, variables: { id: browsed.id, copy, source, path, first: PAGE_SIZE, after } },
    [],
  );
  const page = (copy ? answer.data?.localCopy : answer.data?.restorePoint)?.items;
  return (
    <>
      {answer.error && (
        <tr>
          <td colSpan={5}>
            <Errors errors={topLevel(answer.error)} />
          </td>
        </tr>
      )}
      {answer.fetching && !page && (
        <tr>
          <td colSpan={5} role="status">
            Reading the items…
          </td>
        </tr>
      )}
      {page?.nodes.map((item) => <ItemRow key={item.path} browsed={browsed} item={item} onOpen={onOpen} restore={restore} />)}
      {page && page.totalCount === 0 && (
        <tr>
          <td colSpan={5}>This folder is empty.</td>
        </tr>
      )}
      {last && page?.pageInfo.hasNextPage && page.pageInfo.endCursor && (
        <tr>
          <td colSpan={5}>
            <button type="button" onClick={() => onMore(page.pageInfo.endCursor!)}>
              Load more
            </button>{" "}
            <span className="note-text">({page.totalCount} in this folder)</span>
          </td>
        </tr>
      )}
    </>
  );
}

function ItemRow({
  browsed,
  item,
  onOpen,
  restore,
}: {
  browsed: Browsed;
  item: Item;
  onOpen: (item: Item) => void;
  restore: RestoreAction;
}) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const name = item.path.split("/").pop() ?? item.path;
  const folder = item.kind === "FOLDER";
  return (
    <tr>
      <th scope="row">
        {folder ? (
          <button type="button" className="link" onClick={() => onOpen(item)}>
            {name}
          </button>
        ) : (
          name
        )}
        <Errors errors={errors} />
      </th>
      <td data-label="Kind">{item.kind.toLowerCase()}</td>
      <td data-label="Size">
        {item.sizeBytes === null || item.sizeBytes === undefined ? "—" : bytes(item.sizeBytes)}
        {item.rowCount !== null && item.rowCount !== undefined && ` (${item.rowCount} rows)`}
      </td>
      <td data-label="Modified">{item.modifiedAt ? when(item.modifiedAt) : "—"}</td>
      <td className="actions">
        <DownloadButton browsed={browsed} source={item.source} path={item.path} onErrors={setErrors} />
        {"onRestore" in restore ? (
          <RoleButton
            needs="ADMIN"
            onClick={() =>
              restore.onRestore({
                items: [{ source: item.source, paths: [item.path] }],
                what: `${item.source}/${item.path}`,
                // The API's default: only settings items go back without a restart.
                restarts: item.kind !== "MODULE",
              })
            }
          >
            Restore
          </RoleButton>
        ) : (
          <RoleButton needs="ADMIN" disabled title="Import the copy first" aria-describedby={restore.refusal}>
            Restore
          </RoleButton>
        )}
      </td>
    </tr>
  );
}

/** Download: a short-lived signed link (createItemDownloadUrl) the browser fetches without the
 * token, under the name the server gives (a folder as <name>.zip, a table as <name>.csv). */
function DownloadButton({
  browsed,
  source,
  path,
  onErrors,
}: {
  browsed: Browsed;
  source: string;
  path: string;
  onErrors: (errors: (UserErrorShape | string)[]) => void;
}) {
  const [link, makeLink] = useMutation(CreateItemDownloadUrl);
  return (
    <RoleButton
      needs="OPERATOR"
      disabled={link.fetching}
      onClick={async () => {
        const of = browsed.kind === "localCopy" ? { localCopyId: browsed.id } : { restorePointId: browsed.id };
        const answer = await makeLink({ ...of, source, path });
        const payload = answer.data?.createItemDownloadUrl;
        onErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
        if (payload?.signedUrl) {
          const anchor = document.createElement("a");
          anchor.href = payload.signedUrl.url;
          anchor.download = "";
          document.body.append(anchor);
          anchor.click();
          anchor.remove();
        }
      }}
    >
      Download
    </RoleButton>
  );
}
