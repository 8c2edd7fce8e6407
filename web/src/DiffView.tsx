// What differs between two configurations (compareRestorePoints, applyPreview): the summary,
// then each change with its text diff or changed settings when a person can read them. Given
// `restore`, each change has "Restore this": that one item put back as the restore point `from` has it.
import { useQuery } from "urql";
import type { DiffFieldsFragment } from "./gql/graphql";
import type { Restoring } from "./BrowseDialog";
import { Sources } from "./operations";
import { RoleButton, bytes } from "./ui";

type Change = DiffFieldsFragment["changes"]["nodes"][number];
/** "Restore this" on each change: `from` names the restore point the item comes back from. */
export type RestoreChange = { from: string; onRestore: (restoring: Restoring) => void };

/** The item restore of one change; `settingsSources`: the sources of kind SETTINGS (the API's
 * default: only settings items go back without a restart). */
function restoringChange(change: { source: string; path: string }, settingsSources: string[]): Restoring {
  return {
    items: [{ source: change.source, paths: [change.path] }],
    what: `${change.source}/${change.path}`,
    restarts: !settingsSources.includes(change.source),
  };
}

export function summaryText(s: { added: number; removed: number; changed: number; unchanged?: number }): string {
  const parts = [`${s.added} added`, `${s.removed} removed`, `${s.changed} changed`];
  if (s.unchanged !== undefined) parts.push(`${s.unchanged} unchanged`);
  return parts.join(", ");
}

export function DiffView({ diff, label, restore }: { diff: DiffFieldsFragment; label: string; restore?: RestoreChange }) {
  const { summary, changes } = diff;
  return (
    <div>
      <p className="diff-summary">
        {summaryText(summary)}
        {summary.addedBytes + summary.changedBytes > 0 && ` (${bytes(summary.addedBytes + summary.changedBytes)} new or changed)`}
      </p>
      {changes.totalCount === 0 ? (
        <p>No differences.</p>
      ) : (
        <ul className="changes" aria-label={label}>
          {changes.nodes.map((change) => (
            <li className="change" key={`${change.source}/${change.path}`}>
              <details>
                <summary>
                  <span className={change.kind === "ADDED" ? "keep" : change.kind === "REMOVED" ? "drop" : ""}>{change.kind.toLowerCase()}</span>{" "}
                  <code>
                    {change.source}/{change.path}
                  </code>
                </summary>
                {change.settingsChanges && change.settingsChanges.length > 0 && (
                  <ul>
                    {change.settingsChanges.map((s) => (
                      <li key={s.path}>
                        <code>{s.path}</code>: {s.beforePresent ? JSON.stringify(s.before) : "(absent)"} → {s.afterPresent ? JSON.stringify(s.after) : "(absent)"}
                      </li>
                    ))}
                  </ul>
                )}
                {change.textDiff && <pre className="diff">{change.textDiff}</pre>}
                {!change.textDiff && !change.settingsChanges?.length && <p className="note-text">No readable difference (binary content or a folder).</p>}
                {change.truncated && <p className="note-text">Cut at the server's limit.</p>}
              </details>
              {/* REMOVED: the restore point it would come back from does not hold it, and an item
                  apply puts back what a restore point holds (the folder above it goes back whole). */}
              {restore && change.kind !== "REMOVED" && <RestoreThis change={change} restore={restore} />}
            </li>
          ))}
        </ul>
      )}
      {changes.totalCount > changes.nodes.length && (
        <p className="note-text">
          Showing {changes.nodes.length} of {changes.totalCount} changes.
        </p>
      )}
    </div>
  );
}

/** A button outside <summary> (no button inside another control); its name says the item and the
 * restore point it comes back from. */
function RestoreThis({ change, restore }: { change: Change; restore: RestoreChange }) {
  const what = `${change.source}/${change.path}`;
  // The page's list of sources (cached: one request for all the rows), for whether a restart follows.
  const [sources] = useQuery({ query: Sources });
  const settings = sources.data?.sources.filter((s) => s.kind === "SETTINGS").map((s) => s.name) ?? [];
  return (
    <RoleButton needs="ADMIN" aria-label={`Restore this: ${what} from ${restore.from}`} onClick={() => restore.onRestore(restoringChange(change, settings))}>
      Restore this
    </RoleButton>
  );
}
