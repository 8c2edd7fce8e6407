// "Create restore point" and its form: Label, Note, Create; userErrors next to their field. It sits
// in the head of the restore points' card (its button beside the heading, the form below it).
import { useState } from "react";
import { useMutation } from "urql";
import { CreateRestorePoint } from "./operations";
import { Errors, RoleButton, bringTo, topLevel, type UserErrorShape } from "./ui";

export function CreateForm() {
  const [open, setOpen] = useState(false);
  const [label, setLabel] = useState("");
  const [note, setNote] = useState("");
  const [keepDays, setKeepDays] = useState("");
  const [errors, setErrors] = useState<UserErrorShape[]>([]);
  const [other, setOther] = useState<string[]>([]);
  const [result, create] = useMutation(CreateRestorePoint);
  // The operation lists are below the restore points: after a create, a way to its progress.
  const [started, setStarted] = useState(false);
  const about = (field: string) => errors.filter((e) => e.field === field);

  async function submit() {
    // "Expires after" is a number of days from now; the server checks the time it gives.
    const expiresAt = keepDays ? new Date(Date.now() + Number(keepDays) * 86400_000).toISOString() : null;
    const answer = await create({ label: label.trim() || null, note: note.trim() || null, expiresAt });
    const payload = answer.data?.createRestorePoint;
    setOther(topLevel(answer.error));
    setErrors(payload?.userErrors ?? []);
    if (payload && payload.userErrors.length === 0) {
      setLabel("");
      setNote("");
      setKeepDays("");
      setOpen(false);
      setStarted(true);
    }
  }

  return (
    <>
      <RoleButton needs="OPERATOR" aria-expanded={open} aria-controls="create-form" onClick={() => {
        setOpen(!open);
        setStarted(false);
      }}>
        Create restore point
      </RoleButton>
      {started && !open && (
        <p className="note create-started">
          Started.{" "}
          <button type="button" className="link" onClick={() => bringTo("running-heading")}>
            Follow its progress
          </button>
        </p>
      )}
      {open && (
        <form
          id="create-form"
          className="create-form"
          aria-label="Create restore point"
          onSubmit={(event) => {
            event.preventDefault();
            void submit();
          }}
        >
          <label htmlFor="create-label">Label</label>
          <input
            id="create-label"
            value={label}
            onChange={(e) => setLabel(e.target.value)}
            aria-invalid={about("label").length > 0 || undefined}
            aria-describedby="create-label-errors"
          />
          <Errors errors={about("label")} id="create-label-errors" />
          <label htmlFor="create-note">Note</label>
          <textarea
            id="create-note"
            value={note}
            rows={2}
            onChange={(e) => setNote(e.target.value)}
            aria-invalid={about("note").length > 0 || undefined}
            aria-describedby="create-note-errors"
          />
          <Errors errors={about("note")} id="create-note-errors" />
          <label htmlFor="create-expires">Expires after</label>
          <select
            id="create-expires"
            value={keepDays}
            onChange={(e) => setKeepDays(e.target.value)}
            aria-invalid={about("expiresAt").length > 0 || undefined}
            aria-describedby="create-expires-errors"
          >
            <option value="">Never (kept until deleted)</option>
            <option value="1">1 day</option>
            <option value="7">7 days</option>
            <option value="30">30 days</option>
          </select>
          <Errors errors={about("expiresAt")} id="create-expires-errors" />
          <Errors
            errors={[...errors.filter((e) => !["label", "note", "expiresAt"].includes(e.field ?? "")), ...other]}
          />
          <button type="submit" disabled={result.fetching}>
            Create
          </button>
        </form>
      )}
    </>
  );
}
