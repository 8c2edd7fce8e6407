// The region "Emergency kit", for admins: the server's age identity, the key to every encrypted
// copy, saved as a file after typing EXPORT KEY (a second confirmation: whoever has the file reads
// every encrypted copy). The kit comes in the mutation's answer and is saved from memory, never
// through a link (a URL ends up in histories and proxy logs).
import { useId, useState } from "react";
import { useMutation } from "urql";
import { ExportEmergencyKit } from "./operations";
import { Errors, topLevel, type UserErrorShape } from "./ui";

const CONFIRM = "EXPORT KEY";

function save(text: string, name: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  URL.revokeObjectURL(url);
}

export function EmergencyKitView() {
  const id = useId();
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const [errors, setErrors] = useState<(UserErrorShape | string)[]>([]);
  const [saved, setSaved] = useState(false);
  const [exporting, exportKit] = useMutation(ExportEmergencyKit);
  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>Emergency kit</h2>
      <p>
        The server's key to its encrypted copies. Keep the file offline (printed, or on a USB stick in a drawer): on a
        new machine, <code>backups key import FILE</code> reads every encrypted copy again, and{" "}
        <code>age -d -i FILE</code> decrypts one without a server.
      </p>
      {!open ? (
        <button type="button" onClick={() => setOpen(true)}>
          Download the emergency kit
        </button>
      ) : (
        <form
          aria-label="Download the emergency kit"
          onSubmit={async (event) => {
            event.preventDefault();
            const answer = await exportKit({ confirm: typed });
            const payload = answer.data?.exportEmergencyKit;
            setErrors([...(payload?.userErrors ?? []), ...topLevel(answer.error)]);
            if (payload?.kit) {
              save(payload.kit, "backups-emergency-kit.txt");
              setSaved(true);
              setOpen(false);
              setTyped("");
            }
          }}
        >
          <p className="note">Whoever has this file can read every encrypted copy this server made.</p>
          <label htmlFor={`${id}-confirm`}>Type {CONFIRM} to confirm</label>
          <input id={`${id}-confirm`} value={typed} autoComplete="off" onChange={(e) => setTyped(e.target.value)} />
          <div className="actions">
            <button type="submit" className="danger" disabled={typed !== CONFIRM || exporting.fetching}>
              Save the kit
            </button>
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      <Errors errors={errors} />
      {saved && <p role="status">Saved as backups-emergency-kit.txt: keep it offline, then delete the download.</p>}
    </section>
  );
}
