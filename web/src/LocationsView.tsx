// The region "Locations": every location (local first) with whether it answers and its copies;
// upload a local copy to one (live progress), fetch a copy from one, then import what came.
import { useEffect, useId, useState } from "react";
import { useMutation, useSubscription } from "urql";
import { DeleteRemoteCopy, FetchFromLocation, ImportLocalCopy, LocalCopies, Locations, OperationProgress, UploadToLocation } from "./operations";
import type { LocationsQuery } from "./gql/graphql";
import { ProgressBar, type Op } from "./OperationsView";
import { useKept, useRefreshedQuery } from "./refresh";
import { pointLabel, DeleteTwice, Errors, RoleButton, bytes, topLevel, when, type UserErrorShape } from "./ui";

type Location = LocationsQuery["locations"][number];
type Copy = Location["copies"][number];
type Problems = (UserErrorShape | string)[];

export function LocationsView() {
  const [list, refresh] = useRefreshedQuery({ query: Locations });
  // While a refetch runs, the list stays (with each copy's messages and tracked operations).
  const locations = useKept(list.data?.locations);
  return (
    <section className="card" aria-labelledby="locations-heading">
      <h2 id="locations-heading">Locations</h2>
      <Errors errors={topLevel(list.error)} />
      {locations && <UploadForm locations={locations.filter((l) => l.kind !== "LOCAL")} />}
      <ul className="locations">
        {locations?.map((location) => (
          <LocationItem key={location.name} location={location} onDeleted={refresh} />
        ))}
      </ul>
    </section>
  );
}

function LocationItem({ location, onDeleted }: { location: Location; onDeleted: () => void }) {
  return (
    <li className="location" aria-label={`Location ${location.name}`} id={`location-${location.name}`} tabIndex={-1}>
      <p>
        <strong>{location.name}</strong> · {location.kind.toLowerCase()}
        {location.encrypted && " · encrypted"} ·{" "}
        <span className={location.reachable ? "keep" : "drop"}>{location.reachable ? "reachable" : "unreachable"}</span>
      </p>
      {location.problem && <p className="error-text">{location.problem}</p>}
      {location.reachable && location.copies.length === 0 && <p className="note-text">No copies here.</p>}
      {location.copies.length > 0 && (
        <ul className="copies" aria-label={`Copies at ${location.name}`}>
          {location.copies.map((copy) => (
            <RemoteCopyItem key={copy.id} copy={copy} fetchable={location.kind !== "LOCAL"} onDeleted={onDeleted} />
          ))}
        </ul>
      )}
    </li>
  );
}

function RemoteCopyItem({ copy, fetchable, onDeleted }: { copy: Copy; fetchable: boolean; onDeleted: () => void }) {
  const [errors, setErrors] = useState<Problems>([]);
  const [, doDelete] = useMutation(DeleteRemoteCopy);
  const [started, setStarted] = useState<Op | null>(null);
  const [fetching, doFetch] = useMutation(FetchFromLocation);
  const problemId = useId();
  return (
    <li className="copy">
      <p>
        <strong>{copy.fileName}</strong> · {bytes(copy.sizeBytes)} · {when(copy.modifiedAt)}
        {copy.encrypted && " · encrypted"}
      </p>
      {copy.restorePoint ? (
        <p className="note-text">Holds the restore point {pointLabel(copy.restorePoint.label)}</p>
      ) : (
        copy.restorePointId && <p className="note-text">Holds the restore point {copy.restorePointId}, not in this server: fetch it, then import it.</p>
      )}
      {copy.problem && (
        <p className="error-text" id={problemId}>
          {copy.problem}
        </p>
      )}
      {fetchable && (
        <div className="actions">
          <RoleButton
            needs="OPERATOR"
            disabled={fetching.fetching || (started !== null && !started.done) || !!copy.problem}
            aria-describedby={copy.problem ? problemId : undefined}
            onClick={async () => {
              const answer = await doFetch({ id: copy.id });
              const payload = answer.data?.fetchFromLocation;
              setErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
              if (payload?.operation) setStarted(payload.operation);
            }}
          >
            Fetch
          </RoleButton>
          <DeleteTwice
            onDelete={async () => {
              const answer = await doDelete({ id: copy.id });
              const problems = [...(answer.data?.deleteRemoteCopy.userErrors ?? []), ...topLevel(answer.error)];
              setErrors(problems);
              if (problems.length === 0) onDeleted();
            }}
          />
        </div>
      )}
      <Errors errors={errors} />
      {started && <Tracked first={started} what={`Fetch of ${copy.fileName}`} onUpdate={setStarted} importable />}
    </li>
  );
}

function UploadForm({ locations }: { locations: Location[] }) {
  const id = useId();
  const [copies] = useRefreshedQuery({ query: LocalCopies });
  const [copyId, setCopyId] = useState("");
  const [target, setTarget] = useState("");
  const [errors, setErrors] = useState<Problems>([]);
  const [started, setStarted] = useState<Op | null>(null);
  const [result, upload] = useMutation(UploadToLocation);
  const usable = copies.data?.localCopies.filter((c) => !c.problem) ?? [];
  const chosenCopy = copyId || usable[0]?.id || "";
  const chosenTarget = target || locations.find((l) => l.reachable)?.name || "";
  if (locations.length === 0) return <p className="note-text">No other locations are configured (see [[locations]] in the config file).</p>;
  const about = (field: string) => errors.filter((e) => typeof e !== "string" && e.field === field);
  return (
    <form
      aria-label="Upload to a location"
      onSubmit={async (event) => {
        event.preventDefault();
        const answer = await upload({ id: chosenCopy, location: chosenTarget });
        const payload = answer.data?.uploadToLocation;
        setErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
        if (payload?.operation) setStarted(payload.operation);
      }}
    >
      <div className="field-row">
        <div>
          <label htmlFor={`${id}-copy`}>Local copy to upload</label>
          <select id={`${id}-copy`} value={chosenCopy} onChange={(e) => setCopyId(e.target.value)} aria-describedby={`${id}-copy-errors`}>
            {usable.length === 0 && <option value="">(no local copies: export one first)</option>}
            {usable.map((c) => (
              <option key={c.id} value={c.id}>
                {c.fileName}
              </option>
            ))}
          </select>
          <Errors errors={about("localCopyId")} id={`${id}-copy-errors`} />
        </div>
        <div>
          <label htmlFor={`${id}-location`}>Location</label>
          <select id={`${id}-location`} value={chosenTarget} onChange={(e) => setTarget(e.target.value)} aria-describedby={`${id}-location-errors`}>
            {locations.map((l) => (
              <option key={l.name} value={l.name}>
                {l.name}
                {l.reachable ? "" : " (unreachable)"}
              </option>
            ))}
          </select>
          <Errors errors={about("location")} id={`${id}-location-errors`} />
        </div>
      </div>
      <Errors errors={errors.filter((e) => typeof e === "string" || (e.field !== "location" && e.field !== "localCopyId"))} />
      <RoleButton needs="OPERATOR" type="submit" disabled={!chosenCopy || result.fetching || (started !== null && !started.done)}>
        Upload to location
      </RoleButton>
      {started && <Tracked first={started} what={`Upload to ${chosenTarget}`} onUpdate={setStarted} />}
    </form>
  );
}

/** One operation this view started, followed live; a finished fetch offers to import its copy. */
function Tracked({ first, what, onUpdate, importable = false }: { first: Op; what: string; onUpdate: (op: Op) => void; importable?: boolean }) {
  const [progress] = useSubscription({ query: OperationProgress, variables: { id: first.id } });
  const op = progress.data?.operationProgress ?? first;
  useEffect(() => {
    if (op.done && !first.done) onUpdate(op);
  }, [op, first.done, onUpdate]);
  const [errors, setErrors] = useState<Problems>([]);
  const [imported, setImported] = useState(false);
  const [importing, doImport] = useMutation(ImportLocalCopy);
  return (
    <div className="tracked">
      <p role="status">
        {what}: {op.done ? op.status : `${Math.round(op.progress * 100)}%${op.stage ? ` · ${op.stage}` : ""}`}
      </p>
      {!op.done && <ProgressBar op={op} />}
      {op.error && <p className="error-text">{op.error.message} ({op.error.code})</p>}
      {importable && op.status === "SUCCEEDED" && op.localCopy && (
        <>
          <p>Fetched into the local copies as {op.localCopy.fileName}.</p>
          <RoleButton
            needs="OPERATOR"
            disabled={imported || importing.fetching}
            onClick={async () => {
              const answer = await doImport({ id: op.localCopy!.id });
              const problems = [...(answer.data?.importLocalCopy.userErrors ?? []), ...topLevel(answer.error)];
              setErrors(problems);
              setImported(problems.length === 0);
            }}
          >
            Import the fetched copy
          </RoleButton>
          {imported && <p role="status">Importing: see Running operations.</p>}
        </>
      )}
      <Errors errors={errors} />
    </div>
  );
}
