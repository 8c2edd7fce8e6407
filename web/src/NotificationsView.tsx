// The region "Notifications": each target of the config file ([[notifications]]) with its URL
// (secrets masked by the server), the events it is sent, its last delivery and last error, and
// "Send test" (a message now, and whether it arrived).
import { useState } from "react";
import { useMutation } from "urql";
import { NotificationTargets, TestNotification } from "./operations";
import { useRefreshedQuery } from "./refresh";
import { Errors, RoleButton, topLevel, when } from "./ui";

export function NotificationsView() {
  const [list, refresh] = useRefreshedQuery({ query: NotificationTargets });
  const targets = list.data?.notificationTargets;
  return (
    <section className="card" aria-labelledby="notifications-heading">
      <h2 id="notifications-heading">Notifications</h2>
      <Errors errors={topLevel(list.error)} />
      {targets && targets.length === 0 && (
        <p>
          No targets: add <code>[[notifications]]</code> to the config file to be told when a backup fails.
        </p>
      )}
      <ul className="targets">
        {targets?.map((target) => (
          <li key={target.name} aria-label={`Notification target ${target.name}`}>
            <p>
              <strong>{target.name}</strong> · <code>{target.url}</code>
            </p>
            <p className="note-text">{target.events.map((e) => e.toLowerCase().replaceAll("_", " ")).join(", ")}</p>
            <p className="note-text">
              {target.lastSentAt ? `Last delivered ${when(target.lastSentAt)}` : "Nothing delivered yet"}
            </p>
            {target.lastError && <p className="error-text">Last error: {target.lastError}</p>}
            <SendTest name={target.name} onSent={refresh} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function SendTest({ name, onSent }: { name: string; onSent: () => void }) {
  const [sending, send] = useMutation(TestNotification);
  const [result, setResult] = useState<string | null>(null);
  const [errors, setErrors] = useState<string[]>([]);
  return (
    <div className="actions">
      <RoleButton
        needs="OPERATOR"
        disabled={sending.fetching}
        onClick={async () => {
          setResult(null);
          const answer = await send({ name });
          const payload = answer.data?.testNotification;
          setErrors([...(payload?.userErrors ?? []).map((e) => `${e.message} (${e.code})`), ...topLevel(answer.error)]);
          if (payload && payload.userErrors.length === 0) {
            setResult(payload.delivered ? "Delivered." : `Not delivered: ${payload.error ?? "no reason given"}`);
          }
          onSent();
        }}
      >
        Send test
      </RoleButton>
      {sending.fetching && <span role="status">Sending…</span>}
      {result && <span role="status">{result}</span>}
      <Errors errors={errors} />
    </div>
  );
}
