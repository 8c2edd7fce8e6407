// What differs between two configurations (compareRestorePoints, applyPreview): the summary,
// then each change with its text diff or changed settings when a person can read them.
import type { DiffFieldsFragment } from "./gql/graphql";
import { bytes } from "./ui";

export function summaryText(s: { added: number; removed: number; changed: number; unchanged?: number }): string {
  const parts = [`${s.added} added`, `${s.removed} removed`, `${s.changed} changed`];
  if (s.unchanged !== undefined) parts.push(`${s.unchanged} unchanged`);
  return parts.join(", ");
}

export function DiffView({ diff, label }: { diff: DiffFieldsFragment; label: string }) {
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
