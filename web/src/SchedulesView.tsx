// The region "Schedules": each schedule with pause/resume, run now, edit, delete (a second click)
// and its retention preview; a form to create or edit one, with userErrors next to their field.
import { useId, useState } from "react";
import { useMutation } from "urql";
import {
  CreateSchedule,
  DeleteSchedule,
  LocationNames,
  PruneSchedule,
  RetentionPreview,
  RunSchedule,
  Schedules,
  UpdateSchedule,
} from "./operations";
import type { ScheduleFieldsFragment, ScheduleInput } from "./gql/graphql";
import { useKept, useRefreshedQuery } from "./refresh";
import { pointLabel, DeleteTwice, Errors, RoleButton, topLevel, when, type UserErrorShape } from "./ui";
import { cronOf, pickedOf, scheduleInWords, verificationInWords, WEEKDAYS, type Picked, type Repeat } from "./scheduleWords";

type Schedule = ScheduleFieldsFragment;
type Problems = (UserErrorShape | string)[];

const KEEP = [
  ["keepLast", "Keep last"],
  ["keepHourly", "Keep hourly"],
  ["keepDaily", "Keep daily"],
  ["keepWeekly", "Keep weekly"],
  ["keepMonthly", "Keep monthly"],
  ["keepYearly", "Keep yearly"],
  ["keepWithinDays", "Keep within days"],
] as const;
type KeepName = (typeof KEEP)[number][0];

export function SchedulesView() {
  const [list, refresh] = useRefreshedQuery({ query: Schedules });
  const [creating, setCreating] = useState(false);
  // While a refetch runs, the list stays (with each schedule's form and preview open).
  const schedules = useKept(list.data?.schedules);
  return (
    <section className="card" aria-labelledby="schedules-heading">
      <h2 id="schedules-heading">Schedules</h2>
      <Errors errors={topLevel(list.error)} />
      <RoleButton needs="ADMIN" aria-expanded={creating} onClick={() => setCreating(!creating)}>
        New schedule
      </RoleButton>
      {creating && (
        <ScheduleForm
          onDone={() => {
            setCreating(false);
            refresh();
          }}
          onCancel={() => setCreating(false)}
        />
      )}
      {schedules && schedules.length === 0 && <p>No schedules yet.</p>}
      <ul className="schedules">
        {schedules?.map((s) => <ScheduleItem key={s.id} schedule={s} onChanged={refresh} />)}
      </ul>
    </section>
  );
}

function ScheduleItem({ schedule, onChanged }: { schedule: Schedule; onChanged: () => void }) {
  const [editing, setEditing] = useState(false);
  const [preview, setPreview] = useState(false);
  const [errors, setErrors] = useState<Problems>([]);
  const [notice, setNotice] = useState<string | null>(null);
  const [, update] = useMutation(UpdateSchedule);
  const [, run] = useMutation(RunSchedule);
  const [, prune] = useMutation(PruneSchedule);
  const [, remove] = useMutation(DeleteSchedule);
  const last = schedule.lastOperation;
  const verifying = schedule.verification; // a verification schedule: it makes no restore points
  return (
    <li className="schedule" aria-label={`Schedule ${schedule.name}`} id={`schedule-${schedule.id}`} tabIndex={-1}>
      <p>
        <strong>{schedule.name}</strong> ·{" "}
        <span title={schedule.cron ? `cron ${schedule.cron}` : undefined}>
          {verifying && "verifies "}
          {scheduleInWords(schedule.cron, schedule.timeZone, schedule.afterChangeQuietSeconds)}
          {verifying &&
            `, ${verificationInWords(verifying.readPercent, verifying.outdatedAfterDays, verifying.copies)}`}
        </span>
        {schedule.copyToLocations.length > 0 && ` · copies to ${schedule.copyToLocations.join(", ")}`} ·{" "}
        <span className={schedule.enabled ? "keep" : "drop"}>{schedule.enabled ? "enabled" : "paused"}</span>
      </p>
      <p className="note-text">
        {schedule.nextRunAt ? `Next run ${when(schedule.nextRunAt)}` : "No next run"}
        {schedule.lastRunAt && ` · last run ${when(schedule.lastRunAt)}${last ? ` (${last.status})` : ""}`}
        {!verifying && ` · ${retentionText(schedule)}`}
      </p>
      {last?.error && <p className="error-text">Last run: {last.error.message} ({last.error.code})</p>}
      <div className="actions">
        <RoleButton needs="ADMIN" aria-expanded={editing} onClick={() => setEditing(!editing)}>
          Edit
        </RoleButton>
        <RoleButton
          needs="ADMIN"
          onClick={async () => {
            const answer = await update({ id: schedule.id, input: { name: schedule.name, enabled: !schedule.enabled } });
            setErrors([...(answer.data?.updateSchedule.userErrors ?? []), ...topLevel(answer.error)]);
            onChanged();
          }}
        >
          {schedule.enabled ? "Pause" : "Resume"}
        </RoleButton>
        <RoleButton
          needs="ADMIN"
          onClick={async () => {
            const answer = await run({ id: schedule.id });
            const problems = [...(answer.data?.runSchedule.userErrors ?? []), ...topLevel(answer.error)];
            setErrors(problems);
            setNotice(problems.length === 0 ? "Started: see Running operations." : null);
          }}
        >
          Run now
        </RoleButton>
        {!verifying && (
        <RoleButton
          needs="ADMIN"
          onClick={async () => {
            const answer = await prune({ id: schedule.id });
            const problems = [...(answer.data?.pruneSchedule.userErrors ?? []), ...topLevel(answer.error)];
            setErrors(problems);
            setNotice(problems.length === 0 ? "Pruning: see Running operations." : null);
            onChanged();
          }}
        >
          Prune now
        </RoleButton>
        )}
        {!verifying && (
          <button type="button" aria-expanded={preview} onClick={() => setPreview(!preview)}>
            Retention preview
          </button>
        )}
        <DeleteTwice
          onDelete={async () => {
            const answer = await remove({ id: schedule.id });
            const problems = [...(answer.data?.deleteSchedule.userErrors ?? []), ...topLevel(answer.error)];
            setErrors(problems);
            if (problems.length === 0) onChanged();
          }}
        />
      </div>
      <Errors errors={errors} />
      {notice && <p role="status">{notice}</p>}
      {editing && (
        <ScheduleForm
          schedule={schedule}
          onDone={() => {
            setEditing(false);
            onChanged();
          }}
          onCancel={() => setEditing(false)}
        />
      )}
      {preview && <RetentionPreviewView schedule={schedule} />}
    </li>
  );
}

function retentionText(schedule: Schedule): string {
  const rules = KEEP.filter(([name]) => schedule.retention[name] != null).map(
    ([name, label]) => `${label.toLowerCase()} ${schedule.retention[name]}`,
  );
  return rules.length ? `Retention: ${rules.join(", ")}` : "Retention: keeps everything";
}

function RetentionPreviewView({ schedule }: { schedule: Schedule }) {
  // What retention would delete changes as restore points come and go.
  const [answer] = useRefreshedQuery({ query: RetentionPreview, variables: { id: schedule.id } });
  const decisions = answer.data?.retentionPreview;
  const deleted = decisions?.filter((d) => !d.keep).length ?? 0;
  return (
    <div>
      <Errors errors={topLevel(answer.error)} />
      {!decisions ? (
        <p role="status">Loading the preview…</p>
      ) : decisions.length === 0 ? (
        <p>The schedule has made no restore points yet.</p>
      ) : (
        <>
          <p>
            A prune now keeps {decisions.length - deleted} and deletes {deleted} of {decisions.length} restore points.
          </p>
          <div className="scroll">
            <table aria-label={`Retention preview of ${schedule.name}`}>
              <thead>
                <tr>
                  <th scope="col">Restore point</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Reasons</th>
                </tr>
              </thead>
              <tbody>
                {decisions.map((d) => (
                  <tr key={d.restorePoint.id}>
                    <th scope="row">
                      {pointLabel(d.restorePoint.label)}
                      <div className="note-text">{when(d.restorePoint.createdAt)}</div>
                    </th>
                    <td data-label="Decision" className={d.keep ? "keep" : "drop"}>{d.keep ? "Keep" : "Delete"}</td>
                    <td data-label="Reasons">{d.reasons.join("; ")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}

type Draft = {
  name: string;
  cron: string;
  timeZone: string;
  enabled: boolean;
  labelTemplate: string;
  onCron: boolean;
  afterChanges: boolean;
  quietSeconds: string;
  copyTo: string[];
  verify: boolean; // the kind: "Verify" (true) or "Back up"
  readPercent: string;
  outdatedAfterDays: string;
  verifyCopies: boolean;
} & Record<KeepName, string>;

const QUIET_DEFAULT = 300;

function draftOf(schedule?: Schedule): Draft {
  const keep = Object.fromEntries(KEEP.map(([name]) => [name, schedule?.retention[name]?.toString() ?? ""])) as Record<KeepName, string>;
  const quiet = schedule?.afterChangeQuietSeconds;
  return {
    name: schedule?.name ?? "",
    // A schedule without a cron runs after changes only.
    onCron: !schedule || schedule.cron != null,
    cron: schedule?.cron ?? "0 3 * * *",
    afterChanges: quiet != null,
    quietSeconds: String(quiet ?? QUIET_DEFAULT),
    copyTo: [...(schedule?.copyToLocations ?? [])],
    timeZone: schedule?.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC",
    enabled: schedule?.enabled ?? true,
    labelTemplate: schedule?.labelTemplate ?? "",
    verify: schedule?.verification != null,
    readPercent: String(schedule?.verification?.readPercent ?? 100),
    outdatedAfterDays: String(schedule?.verification?.outdatedAfterDays ?? 0),
    verifyCopies: schedule?.verification?.copies ?? true,
    ...keep,
  };
}

/** Create (no `schedule`) or edit a schedule. */
function ScheduleForm({ schedule, onDone, onCancel }: { schedule?: Schedule; onDone: () => void; onCancel: () => void }) {
  const id = useId();
  const [draft, setDraft] = useState<Draft>(() => draftOf(schedule));
  const [errors, setErrors] = useState<UserErrorShape[]>([]);
  const [other, setOther] = useState<string[]>([]);
  const [created, create] = useMutation(CreateSchedule);
  const [updated, update] = useMutation(UpdateSchedule);
  const [places] = useRefreshedQuery({ query: LocationNames }, []);
  const set = (name: keyof Draft, value: string | boolean | string[]) => setDraft({ ...draft, [name]: value });
  // The time picker edits the cron expression: a preset writes it, "Custom" shows it.
  const picked = pickedOf(draft.cron);
  const [repeat, setRepeat] = useState<Repeat>(picked.repeat);
  const pick = (change: Partial<Picked>) => {
    const next = { ...picked, repeat, ...change };
    if (change.repeat) setRepeat(change.repeat);
    const cron = cronOf(next.repeat === "custom" ? { ...next, repeat: picked.repeat } : next);
    if (cron) set("cron", cron);
  };
  const remote = (places.data?.locations ?? []).filter((place) => place.kind !== "LOCAL");
  // The payloads name the input field ("cron", "retention.keepLast"), with or without "input.".
  const about = (field: string) => errors.filter((e) => e.field?.replace(/^input\./, "") === field);
  const known = [
    "name",
    "cron",
    "timeZone",
    "labelTemplate",
    "afterChangeQuietSeconds",
    "copyToLocations",
    "verification.readPercent",
    "verification.outdatedAfterDays",
    ...KEEP.map(([name]) => `retention.${name}`),
  ];

  async function submit() {
    const count = (text: string) => (text.trim() === "" ? null : Number(text));
    const notWhole = KEEP.filter(([name]) => draft[name].trim() !== "" && !/^-?\d+$/.test(draft[name].trim()));
    if (notWhole.length > 0) {
      setErrors(notWhole.map(([name]) => ({ code: "INVALID_INPUT", field: `retention.${name}`, message: "a whole number, or empty for no limit" })));
      return;
    }
    const quiet = draft.quietSeconds.trim();
    if (draft.afterChanges && !/^\d+$/.test(quiet)) {
      setErrors([{ code: "INVALID_INPUT", field: "afterChangeQuietSeconds", message: "a whole number of seconds" }]);
      return;
    }
    if (draft.verify) {
      const wrong = (["readPercent", "outdatedAfterDays"] as const).filter((name) => !/^-?\d+$/.test(draft[name].trim()));
      if (wrong.length > 0) {
        setErrors(wrong.map((name) => ({ code: "INVALID_INPUT", field: `verification.${name}`, message: "a whole number" })));
        return;
      }
    }
    // A verification schedule makes no restore points: no retention, copies, label or runs after changes.
    const verification = draft.verify
      ? { readPercent: Number(draft.readPercent), outdatedAfterDays: Number(draft.outdatedAfterDays), copies: draft.verifyCopies }
      : null;
    const input: ScheduleInput = draft.verify ? {
      name: draft.name.trim(),
      cron: draft.cron.trim(),
      afterChangeQuietSeconds: null,
      copyToLocations: [],
      timeZone: draft.timeZone.trim() || null,
      enabled: draft.enabled,
      labelTemplate: null,
      retention: {},
      verification,
    } : {
      verification: null,
      name: draft.name.trim(),
      cron: draft.onCron ? draft.cron.trim() : null,
      afterChangeQuietSeconds: draft.afterChanges ? Number(quiet) : null,
      copyToLocations: draft.copyTo,
      timeZone: draft.timeZone.trim() || null,
      enabled: draft.enabled,
      labelTemplate: draft.labelTemplate.trim() || null,
      retention: Object.fromEntries(KEEP.map(([name]) => [name, count(draft[name])])),
    };
    const answer = schedule ? await update({ id: schedule.id, input }) : await create({ input });
    const payload = schedule ? answer.data && "updateSchedule" in answer.data ? answer.data.updateSchedule : undefined
      : answer.data && "createSchedule" in answer.data ? answer.data.createSchedule : undefined;
    setOther(topLevel(answer.error));
    setErrors(payload?.userErrors ?? []);
    if (payload && payload.userErrors.length === 0) onDone();
  }

  const field = (name: "name" | "cron" | "timeZone" | "labelTemplate", label: string, hint?: string) => (
    <div>
      <label htmlFor={`${id}-${name}`}>{label}</label>
      <input
        id={`${id}-${name}`}
        value={draft[name]}
        autoComplete="off"
        spellCheck={false}
        onChange={(e) => set(name, e.target.value)}
        aria-invalid={about(name).length > 0 || undefined}
        aria-describedby={`${id}-${name}-errors${hint ? ` ${id}-${name}-hint` : ""}`}
      />
      {hint && <div className="hint" id={`${id}-${name}-hint`}>{hint}</div>}
      <Errors errors={about(name)} id={`${id}-${name}-errors`} />
    </div>
  );

  const numberField = (name: "readPercent" | "outdatedAfterDays", label: string, hint: string) => (
    <div>
      <label htmlFor={`${id}-${name}`}>{label}</label>
      <input
        id={`${id}-${name}`}
        inputMode="numeric"
        value={draft[name]}
        onChange={(e) => set(name, e.target.value)}
        aria-invalid={about(`verification.${name}`).length > 0 || undefined}
        aria-describedby={`${id}-${name}-hint ${id}-${name}-errors`}
      />
      <div className="hint" id={`${id}-${name}-hint`}>{hint}</div>
      <Errors errors={about(`verification.${name}`)} id={`${id}-${name}-errors`} />
    </div>
  );

  return (
    <form
      className="schedule-form"
      aria-label={schedule ? `Edit schedule ${schedule.name}` : "New schedule"}
      onSubmit={(event) => {
        event.preventDefault();
        void submit();
      }}
    >
      {field("name", "Name")}
      <fieldset>
        <legend>Kind</legend>
        <label className="check">
          <input type="radio" name={`${id}-kind`} checked={!draft.verify} onChange={() => set("verify", false)} />
          Back up
        </label>
        <label className="check">
          <input type="radio" name={`${id}-kind`} checked={draft.verify} onChange={() => set("verify", true)} />
          Verify
        </label>
        {draft.verify && (
          <div className="field-row">
            {numberField("readPercent", "Read percent", "1 to 100: the share of the blobs each run reads (a rotation)")}
            {numberField("outdatedAfterDays", "Skip verified within (days)", "0: verify every restore point each run")}
            <label className="check">
              <input type="checkbox" checked={draft.verifyCopies} onChange={(e) => set("verifyCopies", e.target.checked)} />
              Verify copies too
            </label>
          </div>
        )}
      </fieldset>
      <fieldset>
        <legend>When</legend>
        {!draft.verify && (
          <label className="check">
            <input type="checkbox" checked={draft.onCron} onChange={(e) => set("onCron", e.target.checked)} />
            On a timetable
          </label>
        )}
        {(draft.onCron || draft.verify) && (
          <div className="field-row">
            <div>
              <label htmlFor={`${id}-repeat`}>Repeats</label>
              <select id={`${id}-repeat`} value={repeat} onChange={(e) => pick({ repeat: e.target.value as Repeat })}>
                <option value="daily">Daily</option>
                <option value="weekdays">Weekdays</option>
                <option value="weekly">Weekly</option>
                <option value="custom">Custom (cron)</option>
              </select>
            </div>
            {repeat === "weekly" && (
              <div>
                <label htmlFor={`${id}-weekday`}>On</label>
                <select id={`${id}-weekday`} value={picked.weekday} onChange={(e) => pick({ weekday: Number(e.target.value) })}>
                  {WEEKDAYS.map((day, n) => (
                    <option key={day} value={n}>
                      {day}
                    </option>
                  ))}
                </select>
              </div>
            )}
            {repeat !== "custom" && (
              <div>
                <label htmlFor={`${id}-time`}>At</label>
                <input id={`${id}-time`} type="time" value={picked.time} onChange={(e) => e.target.value && pick({ time: e.target.value })} />
              </div>
            )}
          </div>
        )}
        {(draft.onCron || draft.verify) && repeat === "custom" && field("cron", "Cron", "minute hour day-of-month month day-of-week, e.g. 0 3 * * *")}
        {(draft.onCron || draft.verify) && field("timeZone", "Time zone", "IANA name, e.g. Europe/Paris")}
        {!draft.verify && (
          <label className="check">
            <input type="checkbox" checked={draft.afterChanges} onChange={(e) => set("afterChanges", e.target.checked)} />
            After changes
          </label>
        )}
        {!draft.verify && draft.afterChanges && (
          <div>
            <label htmlFor={`${id}-quiet`}>Quiet time (seconds)</label>
            <input
              id={`${id}-quiet`}
              inputMode="numeric"
              value={draft.quietSeconds}
              onChange={(e) => set("quietSeconds", e.target.value)}
              aria-invalid={about("afterChangeQuietSeconds").length > 0 || undefined}
              aria-describedby={`${id}-quiet-hint ${id}-quiet-errors`}
            />
            <div className="hint" id={`${id}-quiet-hint`}>
              a restore point once the configuration has been quiet this long after a change
            </div>
            <Errors errors={about("afterChangeQuietSeconds")} id={`${id}-quiet-errors`} />
          </div>
        )}
        <p role="status" aria-label="Runs">
          {draft.verify
            ? `Verifies ${scheduleInWords(draft.cron, draft.timeZone)}, ${verificationInWords(
                Number(draft.readPercent) || 0,
                Number(draft.outdatedAfterDays) || 0,
                draft.verifyCopies,
              )}`
            : `Runs ${scheduleInWords(draft.onCron ? draft.cron : null, draft.timeZone, draft.afterChanges ? Number(draft.quietSeconds) || null : null)}`}
        </p>
      </fieldset>
      {!draft.verify && (<>
      <fieldset aria-describedby={`${id}-copy-errors`}>
        <legend>Copy to locations</legend>
        {remote.length === 0 && <p className="note-text">No off-site locations are configured.</p>}
        {remote.map((place) => (
          <label className="check" key={place.name}>
            <input
              type="checkbox"
              checked={draft.copyTo.includes(place.name)}
              onChange={(e) =>
                set("copyTo", e.target.checked ? [...draft.copyTo, place.name] : draft.copyTo.filter((name) => name !== place.name))
              }
            />
            {place.name}
          </label>
        ))}
        <Errors errors={about("copyToLocations")} id={`${id}-copy-errors`} />
      </fieldset>
      {field("labelTemplate", "Label template", "{schedule}, {date}, {time}, {datetime}; empty: \"{schedule} {date} {time}\"")}
      <fieldset>
        <legend>Retention (empty: no limit)</legend>
        <div className="field-row">
          {KEEP.map(([name, label]) => (
            <div key={name}>
              <label htmlFor={`${id}-${name}`}>{label}</label>
              <input
                id={`${id}-${name}`}
                inputMode="numeric"
                value={draft[name]}
                onChange={(e) => set(name, e.target.value)}
                aria-invalid={about(`retention.${name}`).length > 0 || undefined}
                aria-describedby={`${id}-${name}-errors`}
              />
              <Errors errors={about(`retention.${name}`)} id={`${id}-${name}-errors`} />
            </div>
          ))}
        </div>
      </fieldset>
      </>)}
      <label className="check">
        <input type="checkbox" checked={draft.enabled} onChange={(e) => set("enabled", e.target.checked)} />
        Enabled
      </label>
      <Errors errors={[...errors.filter((e) => !known.includes(e.field?.replace(/^input\./, "") ?? "")), ...other]} />
      <div className="actions">
        <button type="submit" disabled={created.fetching || updated.fetching}>
          {schedule ? "Save schedule" : "Create schedule"}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
