// The region "Local copies": Download (a signed URL), Browse (what it holds, without importing it),
// Import, Delete per copy, and an upload (GraphQL multipart, with progress; drop a file on the region too).
import { useRef, useState } from "react";
import { stringifyDocument, useMutation } from "urql";
import { BrowseDialog } from "./BrowseDialog";
import { uploadMultipart } from "./client";
import { CreateDownloadUrl, DeleteLocalCopy, ImportLocalCopy, LocalCopies, UploadLocalCopy } from "./operations";
import type { LocalCopiesQuery } from "./gql/graphql";
import { refusal, reasonId, useSession } from "./session";
import { useKept, useRefreshedQuery } from "./refresh";
import { pointLabel, Errors, RoleButton, bytes, topLevel, when, type UserErrorShape } from "./ui";

type Copy = LocalCopiesQuery["localCopies"][number];

export function LocalCopiesView() {
  const [list, refresh] = useRefreshedQuery({ query: LocalCopies });
  // While a refetch runs, the list stays (with each copy's messages).
  const shown = useKept(list.data?.localCopies);
  const [browsing, setBrowsing] = useState<Copy | null>(null);
  return (
    <section className="card" aria-labelledby="copies-heading">
      <h2 id="copies-heading">Local copies</h2>
      <Errors errors={topLevel(list.error)} />
      <Upload onUploaded={refresh} />
      {shown && shown.length === 0 && <p>No local copies yet: export a restore point or upload a copy.</p>}
      <ul className="copies">
        {shown?.map((copy) => <CopyItem key={copy.id} copy={copy} onBrowse={() => setBrowsing(copy)} onDeleted={refresh} />)}
      </ul>
      {browsing && (
        <BrowseDialog
          browsed={{ kind: "localCopy", id: browsing.id, label: browsing.fileName }}
          onClose={() => setBrowsing(null)}
        />
      )}
    </section>
  );
}

function CopyItem({ copy, onBrowse, onDeleted }: { copy: Copy; onBrowse: () => void; onDeleted: () => void }) {
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [, makeUrl] = useMutation(CreateDownloadUrl);
  const [, doImport] = useMutation(ImportLocalCopy);
  const [, doDelete] = useMutation(DeleteLocalCopy);
  const problemId = `problem-${copy.id}`;
  return (
    <li className="copy">
      <p>
        <strong>{copy.fileName}</strong>{copy.encrypted && " (encrypted)"} · {bytes(copy.sizeBytes)} · {when(copy.modifiedAt)}
      </p>
      {copy.restorePoint && <p className="note-text">Holds the restore point {pointLabel(copy.restorePoint.label)}</p>}
      {copy.problem && (
        <p className="error-text" id={problemId}>
          Cannot be imported: {copy.problem}
        </p>
      )}
      <div className="actions">
        <RoleButton
          needs="OPERATOR"
          aria-label={undefined}
          onClick={async () => {
            // A short-lived signed link: the browser downloads it without the token.
            const answer = await makeUrl({ id: copy.id });
            const payload = answer.data?.createDownloadUrl;
            setErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
            if (payload?.signedUrl) {
              const link = document.createElement("a");
              link.href = payload.signedUrl.url;
              link.download = copy.fileName;
              document.body.append(link);
              link.click();
              link.remove();
            }
          }}
        >
          Download
        </RoleButton>
        <button type="button" onClick={onBrowse}>
          Browse
        </button>
        <RoleButton
          needs="OPERATOR"
          disabled={copy.problem !== null && copy.problem !== undefined}
          aria-describedby={copy.problem ? problemId : undefined}
          onClick={async () => {
            const answer = await doImport({ id: copy.id });
            setErrors([...(answer.data?.importLocalCopy.userErrors ?? []), ...topLevel(answer.error)]);
          }}
        >
          Import
        </RoleButton>
        <RoleButton
          needs="ADMIN"
          onClick={async () => {
            const answer = await doDelete({ id: copy.id });
            const problems = [...(answer.data?.deleteLocalCopy.userErrors ?? []), ...topLevel(answer.error)];
            setErrors(problems);
            if (problems.length === 0) onDeleted();
          }}
        >
          Delete
        </RoleButton>
      </div>
      <Errors errors={errors} />
    </li>
  );
}

function Upload({ onUploaded }: { onUploaded: () => void }) {
  const { token, role } = useSession();
  const why = refusal(role, "OPERATOR");
  const input = useRef<HTMLInputElement>(null);
  const [sent, setSent] = useState<number | null>(null);
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);

  async function send(file: File) {
    setErrors([]);
    setDone(null);
    setSent(0);
    try {
      const answer = await uploadMultipart(token, stringifyDocument(UploadLocalCopy), {}, "file", file, (loaded, total) =>
        setSent(total > 0 ? Math.round((loaded / total) * 100) : 0),
      );
      const payload = answer.data?.uploadLocalCopy;
      setErrors([...(payload?.userErrors ?? []), ...(answer.errors ?? []).map((e) => e.message)]);
      if (payload?.localCopy) {
        setDone(`Uploaded ${payload.localCopy.fileName}.`);
        onUploaded();
      }
    } catch (error) {
      setErrors([(error as Error).message]);
    } finally {
      setSent(null);
      if (input.current) input.current.value = "";
    }
  }

  return (
    <div
      className={`upload${dragging ? " dragging" : ""}`}
      onDragOver={(e) => {
        if (why) return;
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const file = e.dataTransfer.files[0];
        if (file && !why) void send(file);
      }}
    >
      <label htmlFor="upload">Upload a local copy</label>
      <input
        ref={input}
        id="upload"
        type="file"
        accept=".zip,application/zip"
        disabled={why !== null || sent !== null}
        title={why ?? undefined}
        aria-describedby={why ? reasonId("OPERATOR") : "upload-errors"}
        onChange={(e) => {
          const file = e.target.files?.[0];
          if (file) void send(file);
        }}
      />
      <span className="hint">or drop a ZIP here</span>
      {sent !== null && (
        <div className="progress" role="progressbar" aria-label="Upload progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={sent}>
          <div style={{ width: `${sent}%` }} />
        </div>
      )}
      <Errors errors={errors} id="upload-errors" />
      {done && <p role="status">{done}</p>}
    </div>
  );
}
