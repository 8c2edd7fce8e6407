// The region "Backup status", first under the header: what someone who opens the tab because
// something went wrong needs first. The last successful backup and the next run (relative, the
// exact time on hover), the storage used and what storing shared content once saved, each
// location's state and its newest copy, and the health with its problems as links.
import { useEffect, useState } from "react";
import { useMutation } from "urql";
import { Locations, NewestVerification, Storage, VerifyBackups } from "./operations";
import { useKept, useRefreshedQuery } from "./refresh";
import { HealthBanner, useHealth } from "./HealthBanner";
import { Ago, bringTo, bytes, pointLabel, topLevel, Errors, RoleButton } from "./ui";

export function StatusView() {
  const health = useHealth();
  const [storageAnswer] = useRefreshedQuery({ query: Storage });
  const [locationsAnswer] = useRefreshedQuery({ query: Locations });
  const storage = useKept(storageAnswer.data?.storage);
  const locations = useKept(locationsAnswer.data?.locations);
  useTicking(30_000); // "3 hours ago" moves on while the page stays open
  return (
    <section className="card status" aria-labelledby="status-heading">
      <h2 id="status-heading">Backup status</h2>
      <Errors errors={[...topLevel(storageAnswer.error), ...topLevel(locationsAnswer.error)]} />
      <ul className="facts">
        <li aria-labelledby="status-last">
          <span className="fact-name" id="status-last">Last backup</span>
          <span className="fact-value">
            {!health ? "…" : health.lastSuccessAt ? <Ago iso={health.lastSuccessAt} /> : "none yet"}
          </span>
        </li>
        <li aria-labelledby="status-next">
          <span className="fact-name" id="status-next">Next run</span>
          <span className="fact-value">
            {!health ? "…" : health.nextRunAt ? <Ago iso={health.nextRunAt} /> : "no schedule enabled"}
          </span>
        </li>
        <li aria-labelledby="status-storage">
          <span className="fact-name" id="status-storage">Storage used</span>
          <span className="fact-value">
            {storage ? (
              <>
                {bytes(storage.storedBytes)} · {storage.restorePointCount} restore point
                {storage.restorePointCount === 1 ? "" : "s"}
                {storage.localCopiesBytes > 0 && ` (+ ${bytes(storage.localCopiesBytes)} local copies)`}
              </>
            ) : (
              "…"
            )}
          </span>
        </li>
        <li aria-labelledby="status-saved">
          <span className="fact-name" id="status-saved">Saved by deduplication</span>
          <span className="fact-value">
            {storage ? `${bytes(Math.max(0, storage.capturedBytes - storage.storedBytes))} of ${bytes(storage.capturedBytes)} captured` : "…"}
          </span>
        </li>
        <li aria-labelledby="status-verified">
          <span className="fact-name" id="status-verified">Verification</span>
          <span className="fact-value">
            <VerificationFact />
          </span>
        </li>
      </ul>
      {health && <HealthBanner health={health} />}
      <h3 id="status-locations">Locations</h3>
      <ul className="location-states" aria-labelledby="status-locations">
        {locations?.map((location) => {
          const newest = location.copies[0];
          return (
            <li key={location.name}>
              <button type="button" className="link" onClick={() => bringTo(`location-${location.name}`)}>
                {location.name}
              </button>
              {": "}
              {location.reachable ? (
                <span className="keep">reachable</span>
              ) : (
                <span className="drop" title={location.problem ?? undefined}>
                  unreachable
                </span>
              )}
              {location.reachable &&
                (newest ? (
                  <>
                    {" · newest copy "}
                    {newest.restorePoint ? `“${pointLabel(newest.restorePoint.label)}”, ` : ""}
                    <Ago iso={newest.modifiedAt} />
                  </>
                ) : (
                  " · no copies yet"
                ))}
              {!location.reachable && " · its copies are not known just now"}
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** The newest restore point's last verification, and "Verify now" (every restore point and copy,
 * read back and checked: a VERIFY_BACKUPS operation, followed under Running operations). */
function VerificationFact() {
  const [answer] = useRefreshedQuery({ query: NewestVerification });
  const [starting, start] = useMutation(VerifyBackups);
  const [said, setSaid] = useState<string[]>([]);
  const newest = answer.data?.restorePoints.nodes[0];
  const verification = newest?.verification;
  return (
    <>
      {!answer.data ? (
        "…"
      ) : !newest ? (
        "nothing to verify yet"
      ) : !verification ? (
        "the newest restore point is not verified yet"
      ) : verification.state === "OK" ? (
        <>
          newest restore point verified <Ago iso={verification.verifiedAt} />
        </>
      ) : (
        <button type="button" className="link drop" onClick={() => bringTo(`point-${newest.id}`)}>
          newest restore point {verification.state}
        </button>
      )}{" "}
      <RoleButton
        needs="OPERATOR"
        disabled={starting.fetching}
        onClick={async () => {
          const result = await start({});
          const problems = [...(result.data?.verifyBackups.userErrors ?? []).map((e) => `${e.message} (${e.code})`), ...topLevel(result.error)];
          setSaid(problems.length ? problems : ["Verifying every restore point and copy: see Running operations."]);
        }}
      >
        Verify now
      </RoleButton>
      {said.length > 0 && <span role="status">{said.join(" ")}</span>}
    </>
  );
}

/** Render again every `ms` milliseconds (for times said relative to now). */
function useTicking(ms: number) {
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
}
