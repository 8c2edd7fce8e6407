// The backup health, inside "Backup status": quiet while OK, WARNING or CRITICAL with each problem
// listed, each a link to what it is about (a schedule, a location, a restore point's row).
// backupHealth paints it at once; backupHealthChanged keeps it current (it sends the state at
// once too, so a reconnect catches up by itself).
import { useQuery, useSubscription } from "urql";
import { BackupHealth, BackupHealthChanged } from "./operations";
import type { BackupHealthQuery, HealthSubjectKind } from "./gql/graphql";
import { Ago, bringTo } from "./ui";

export type Health = BackupHealthQuery["backupHealth"];

export function useHealth(): Health | undefined {
  const [first] = useQuery({ query: BackupHealth });
  const [live] = useSubscription({ query: BackupHealthChanged });
  return live.data?.backupHealthChanged ?? first.data?.backupHealth;
}

/** The id of the element a problem's subject is shown as (set by the view that shows it), or
 * null for a subject the page shows nowhere (a source). */
export function subjectElement(kind: HealthSubjectKind, id: string): string | null {
  switch (kind) {
    case "SCHEDULE":
      return `schedule-${id}`;
    case "LOCATION":
      return `location-${id}`;
    case "RESTORE_POINT":
      return `point-${id}`;
    default:
      return null;
  }
}

export function HealthBanner({ health }: { health: Health }) {
  if (health.status === "OK") {
    return (
      <p className="health health-ok" role="status" aria-label="Backup health">
        Backups healthy
      </p>
    );
  }
  const critical = health.status === "CRITICAL";
  return (
    <section className={`health health-${critical ? "critical" : "warning"}`} role="alert" aria-label="Backup health">
      <p>
        <strong>{critical ? "Backups failing (CRITICAL)" : "Backups need attention (WARNING)"}</strong>
        {health.lastSuccessAt ? (
          <>
            {" "}
            · last success <Ago iso={health.lastSuccessAt} />
          </>
        ) : (
          " · no successful run yet"
        )}
      </p>
      <ul>
        {health.issues.map((issue, i) => {
          const target = subjectElement(issue.subjectKind, issue.subjectId);
          return (
            <li key={i}>
              {target ? (
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    // A restore point not on the table's page: the table, at least.
                    if (!bringTo(target)) bringTo("points-heading");
                  }}
                >
                  {issue.message}
                </button>
              ) : (
                issue.message
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
