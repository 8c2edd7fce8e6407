// The dialog "Browse restore point": what a restore point holds, one folder at a time (the table
// "Items", read from its manifest by RestorePoint.items), starting at the sources, with a
// breadcrumb back up. Per item: Download (a signed link, like a local copy's) and Restore (the
// apply dialog with just that item: its preview, the safety restore point, the typed APPLY).
import { useEffect, useId, useRef, useState } from "react";
import { useMutation, useQuery } from "urql";
import { CreateItemDownloadUrl, RestorePointItems, Sources } from "./operations";
import type { ItemSelection, RestorePointItemsQuery } from "./gql/graphql";
import { useRefreshedQuery } from "./refresh";
import { Errors, RoleButton, bytes, topLevel, when, type UserErrorShape } from "./ui";

// The API's largest page (BACKUPS_MAX_PAGE_SIZE's default): a big folder loads 100 at a time.
const PAGE_SIZE = 100;

type Item = NonNullable<RestorePointItemsQuery["restorePoint"]>["items"]["nodes"][number];
/** Where the dialog is: the sources (source null), a source's top level (path null), or a folder. */
type Place = { source: string | null; path: string | null };
/** What the apply dialog puts back: the items, and how the dialog names them. */
export type Restoring = { items: ItemSelection[]; what: string; restarts: boolean };

type Props = { point: { id: string; label: string }; onRestore: (restoring: Restoring) => void; onClose: () => void };

export function BrowseDialog({ point, onRestore, onClose }: Props) {
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
  const crumbs: { name: string; place: Place }[] = [{ name: "Sources", place: { source: null, path: null } }];
  if (place.source !== null) {
    crumbs.push({ name: place.source, place: { source: place.source, path: null } });
    const parts = place.path?.split("/") ?? [];
    parts.forEach((part, index) => crumbs.push({ name: part, place: { source: place.source, path: parts.slice(0, index + 1).join("/") } }));
  }

  return (
    <dialog ref={dialog} className="wide" aria-labelledby={`${id}-heading`} onCancel={onClose}>
      <h2 id={`${id}-heading`}>Browse restore point</h2>
      <p>
        What <strong>{point.label}</strong> holds. Open a folder by its name; Restore puts back just that item.
      </p>
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
              <SourceRows pointId={point.id} onOpen={(name) => go({ source: name, path: null })} />
            ) : (
              cursors.map((after, index) => (
                <ItemRows
                  key={`${source}/${place.path ?? ""}/${after ?? ""}`}
                  pointId={point.id}
                  source={source}
                  path={place.path}
                  after={after}
                  last={index === cursors.length - 1}
                  onOpen={(item) => go({ source: item.source, path: item.path })}
                  onMore={(cursor) => setCursors([...cursors, cursor])}
                  onRestore={onRestore}
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

/** The top of the breadcrumb: the sources configured here (the API names no restore point's
 * sources apart from its items; a source the restore point lacks answers NOT_FOUND when opened). */
function SourceRows({ pointId, onOpen }: { pointId: string; onOpen: (source: string) => void }) {
  const [sources] = useQuery({ query: Sources });
  return (
    <>
      {sources.error && (
        <tr>
          <td colSpan={5}>
            <Errors errors={topLevel(sources.error)} />
          </td>
        </tr>
      )}
      {sources.data?.sources.map((source) => <SourceRow key={source.name} pointId={pointId} source={source} onOpen={onOpen} />)}
    </>
  );
}

/** A source at the top of the breadcrumb: opens on its name; Download gives all of it (path ""). */
function SourceRow({ pointId, source, onOpen }: { pointId: string; source: { name: string; kind: string }; onOpen: (source: string) => void }) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  return (
    <tr>
      <th scope="row">
        <button type="button" className="link" onClick={() => onOpen(source.name)}>
          {source.name}
        </button>
        <Errors errors={errors} />
      </th>
      <td>source ({source.kind.toLowerCase()})</td>
      <td>—</td>
      <td>—</td>
      <td className="actions">
        <DownloadButton pointId={pointId} source={source.name} path="" onErrors={setErrors} />
      </td>
    </tr>
  );
}

/** One page of a folder's items, and "Load more" under the last page while there are more. */
function ItemRows({
  pointId,
  source,
  path,
  after,
  last,
  onOpen,
  onMore,
  onRestore,
}: {
  pointId: string;
  source: string;
  path: string | null;
  after: string | null;
  last: boolean;
  onOpen: (item: Item) => void;
  onMore: (cursor: string) => void;
  onRestore: (restoring: Restoring) => void;
}) {
  // A restore point's items never change: read once, not again as operations end.
  const [answer] = useRefreshedQuery({ query: RestorePointItems, variables: { id: pointId, source, path, first: PAGE_SIZE, after } }, []);
  const page = answer.data?.restorePoint?.items;
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
      {page?.nodes.map((item) => <ItemRow key={item.path} pointId={pointId} item={item} onOpen={onOpen} onRestore={onRestore} />)}
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
  pointId,
  item,
  onOpen,
  onRestore,
}: {
  pointId: string;
  item: Item;
  onOpen: (item: Item) => void;
  onRestore: (restoring: Restoring) => void;
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
      <td>{item.kind.toLowerCase()}</td>
      <td>
        {item.sizeBytes === null || item.sizeBytes === undefined ? "—" : bytes(item.sizeBytes)}
        {item.rowCount !== null && item.rowCount !== undefined && ` (${item.rowCount} rows)`}
      </td>
      <td>{item.modifiedAt ? when(item.modifiedAt) : "—"}</td>
      <td className="actions">
        <DownloadButton pointId={pointId} source={item.source} path={item.path} onErrors={setErrors} />
        <RoleButton
          needs="ADMIN"
          onClick={() =>
            onRestore({
              items: [{ source: item.source, paths: [item.path] }],
              what: `${item.source}/${item.path}`,
              // The API's default: only settings items go back without a restart.
              restarts: item.kind !== "MODULE",
            })
          }
        >
          Restore
        </RoleButton>
      </td>
    </tr>
  );
}

/** Download: a short-lived signed link (createItemDownloadUrl) the browser fetches without the
 * token, under the name the server gives (a folder as <name>.zip, a table as <name>.csv). */
function DownloadButton({
  pointId,
  source,
  path,
  onErrors,
}: {
  pointId: string;
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
        const answer = await makeLink({ id: pointId, source, path });
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
