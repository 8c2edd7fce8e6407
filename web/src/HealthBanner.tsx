// The backup health as a banner: quiet while OK, WARNING or CRITICAL with each problem listed.
// backupHealth paints it at once; backupHealthChanged keeps it current (it sends the state at
// once too, so a reconnect catches up by itself).
import { useQuery, useSubscription } from "urql";
import { BackupHealth, BackupHealthChanged } from "./operations";
import { when } from "./ui";

export function HealthBanner() {
  const [first] = useQuery({ query: BackupHealth });
  const [live] = useSubscription({ query: BackupHealthChanged });
  const health = live.data?.backupHealthChanged ?? first.data?.backupHealth;
  if (!health) return null;
  if (health.status === "OK") {
    return (
      <p className="health health-ok" role="status" aria-label="Backup health">
        Backups healthy{health.lastSuccessAt ? ` · last success ${when(health.lastSuccessAt)}` : ""}
        {health.nextRunAt ? ` · next run ${when(health.nextRunAt)}` : ""}
      </p>
    );
  }
  const critical = health.status === "CRITICAL";
  return (
    <section className={`health health-${critical ? "critical" : "warning"}`} role="alert" aria-label="Backup health">
      <p>
        <strong>{critical ? "Backups failing (CRITICAL)" : "Backups need attention (WARNING)"}</strong>
        {health.lastSuccessAt ? ` · last success ${when(health.lastSuccessAt)}` : " · no successful run yet"}
      </p>
      <ul>
        {health.problems.map((problem, i) => (
          <li key={i}>{problem}</li>
        ))}
      </ul>
    </section>
  );
}
