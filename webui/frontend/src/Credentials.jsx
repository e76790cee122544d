// The credentials page: list, create, rotate, change the allowed hosts of and delete stored credentials through
// /api/credentials/. Secrets go in through password inputs that are cleared once sent; no response carries one.
// An error the API gives for a field (its details' `path`, or `field` for the engine's checks) is shown beside
// that field.
import { useEffect, useState } from "react";
import { api, get } from "./api.js";
import { Dialog } from "./dialogs.jsx";

const NEEDS_DESIGNER = "needs the designer role";
const NEEDS_CREDENTIAL_USER = "needs the designer and credential_user roles";
const SECRET_HINT = {
  api_key: "sent as “Authorization: Bearer <secret>” (model providers)",
  bearer: "sent as “Authorization: Bearer <secret>”",
  basic: "user:password, sent as HTTP basic authentication",
  header: "Header-Name: value, sent as that header",
};

// An ApiError's messages by the form field they name; those naming none (or a field not in ``fields``) under "form".
export function errorsByField(err, fields) {
  const out = {};
  const details = err.details?.length ? err.details : [{}];
  for (const d of details) {
    const named = String(d.path ?? d.field ?? "").split(/[.[]/)[0];
    let field = fields.includes(named) ? named : "form";
    if (field === "form" && err.code === "conflict" && fields.includes("name")) field = "name";
    out[field] ||= d.message || err.message;
  }
  return out;
}

const hostsOf = (text) => text.split(/[\n,]/).map((h) => h.trim()).filter(Boolean);

function Field({ id, label, error, hint, children }) {
  const describedBy = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ") || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": error ? "true" : undefined, "aria-describedby": describedBy })}
      {hint ? <p className="muted hint" id={`${id}-hint`}>{hint}</p> : null}
      {error ? <p className="field-error" id={`${id}-error`} data-error={id}>{error}</p> : null}
    </div>
  );
}

function CreateForm({ kinds, onCreated }) {
  const [values, setValues] = useState({ name: "", kind: kinds[0] || "api_key", secret: "", hosts: "" });
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setValues((v) => ({ ...v, [k]: e.target.value }));
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const created = await api("POST", "/api/credentials/", {
        name: values.name, kind: values.kind, secret: values.secret, allowed_hosts: hostsOf(values.hosts),
      });
      setValues({ name: "", kind: values.kind, secret: "", hosts: "" });
      setErrors({});
      onCreated(created);
    } catch (err) {
      setValues((v) => ({ ...v, secret: "" })); // the secret is typed again, not kept in the page
      setErrors(errorsByField(err, ["name", "kind", "secret", "allowed_hosts"]));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="trigger-form" aria-label="New credential" onSubmit={submit} noValidate>
      {errors.form ? <p className="field-error" role="alert" data-error="form">{errors.form}</p> : null}
      <Field id="credential-name" label="Name" error={errors.name}
        hint="Letters, digits, '.', '_' and '-'; nodes name the credential by it.">
        {(a) => <input type="text" {...a} value={values.name} onChange={set("name")} maxLength={100} autoComplete="off"
          placeholder="github-token" required />}
      </Field>
      <Field id="credential-kind" label="Kind" error={errors.kind} hint={SECRET_HINT[values.kind]}>
        {(a) => <select {...a} value={values.kind} onChange={set("kind")}>
          {kinds.map((k) => <option key={k} value={k}>{k}</option>)}
        </select>}
      </Field>
      <Field id="credential-secret" label="Secret" error={errors.secret}
        hint="Write-only: it is stored encrypted and never shown again.">
        {(a) => <input type="password" {...a} value={values.secret} onChange={set("secret")} autoComplete="new-password"
          spellCheck={false} required />}
      </Field>
      <Field id="credential-hosts" label="Allowed hosts" error={errors.allowed_hosts}
        hint="One per line: api.example.com, *.example.com, 10.0.0.0/8 or * (any public host). Empty: sent nowhere.">
        {(a) => <textarea {...a} rows={3} value={values.hosts} onChange={set("hosts")} spellCheck={false} />}
      </Field>
      <button type="submit" disabled={busy}>Create credential</button>
    </form>
  );
}

function SecretDialog({ credential, onClose, onDone }) {
  const [secret, setSecret] = useState("");
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    try {
      const rotated = await api("POST", `/api/credentials/${encodeURIComponent(credential.name)}/rotate/`, { secret });
      onDone(rotated);
    } catch (err) {
      setSecret("");
      setErrors(errorsByField(err, ["secret"]));
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Rotate ${credential.name}`} onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" disabled={busy} onClick={submit}>Rotate secret</button></>}>
      <p>The new secret replaces the old one at once; steps that send it from now on send the new one.</p>
      {errors.form ? <p className="field-error" role="alert">{errors.form}</p> : null}
      <Field id="rotate-secret" label="New secret" error={errors.secret} hint={SECRET_HINT[credential.kind]}>
        {(a) => <input type="password" {...a} value={secret} onChange={(e) => setSecret(e.target.value)}
          autoComplete="new-password" spellCheck={false} autoFocus />}
      </Field>
    </Dialog>
  );
}

function HostsDialog({ credential, onClose, onDone }) {
  const [hosts, setHosts] = useState(credential.allowed_hosts.join("\n"));
  const [errors, setErrors] = useState({});
  const submit = async () => {
    try {
      onDone(await api("PATCH", `/api/credentials/${encodeURIComponent(credential.name)}/`,
        { allowed_hosts: hostsOf(hosts) }));
    } catch (err) {
      setErrors(errorsByField(err, ["allowed_hosts"]));
    }
  };
  return (
    <Dialog title={`Allowed hosts of ${credential.name}`} onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" onClick={submit}>Save hosts</button></>}>
      {errors.form ? <p className="field-error" role="alert">{errors.form}</p> : null}
      <Field id="edit-hosts" label="Allowed hosts" error={errors.allowed_hosts}
        hint="One per line. Empty: the secret is sent nowhere.">
        {(a) => <textarea {...a} rows={4} value={hosts} onChange={(e) => setHosts(e.target.value)} spellCheck={false} />}
      </Field>
    </Dialog>
  );
}

function DeleteDialog({ credential, onClose, onDone }) {
  const [error, setError] = useState(null);
  const submit = async () => {
    try {
      await api("DELETE", `/api/credentials/${encodeURIComponent(credential.name)}/`);
      onDone();
    } catch (err) {
      setError(err.message);
    }
  };
  return (
    <Dialog title={`Delete ${credential.name}?`} onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" className="danger" onClick={submit}>Delete credential</button></>}>
      <p>Steps of workflows that name <code>{credential.name}</code> will fail until a credential of that name is
        stored again.</p>
      {error ? <p className="field-error" role="alert">{error}</p> : null}
    </Dialog>
  );
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

export function Credentials({ props }) {
  const roles = props.roles || {};
  const [list, setList] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [dialog, setDialog] = useState(null);
  const [notice, setNotice] = useState(null);
  const load = () => get("/api/credentials/").then(setList, (err) => setLoadError(err.message));
  useEffect(() => { load(); }, []);
  const done = (text) => {
    setDialog(null);
    setNotice(text);
    load();
  };
  const designTitle = roles.design ? undefined : NEEDS_DESIGNER;
  return (
    <>
      <p role="status" className="status-line" data-state="ok">{notice}</p>
      {loadError ? <p className="field-error" role="alert">Cannot list the credentials: {loadError}</p> : null}
      <table className="list" aria-label="Credentials">
        <thead><tr><th>Name</th><th>Kind</th><th>Allowed hosts</th><th>Created</th><th>Rotated</th>
          <th><span className="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          {list === null && !loadError ? <tr><td colSpan={6} className="muted">Loading…</td></tr> : null}
          {list && !list.length ? <tr><td colSpan={6} className="muted">No credentials yet.</td></tr> : null}
          {(list || []).map((c) => (
            <tr key={c.name} data-credential={c.name}>
              <td><code>{c.name}</code></td>
              <td>{c.kind}</td>
              <td>{c.allowed_hosts.length ? c.allowed_hosts.map((h) => <code key={h} className="host">{h}</code>)
                : <span className="muted">none (sent nowhere)</span>}</td>
              <td>{when(c.created_at)}</td>
              <td>{c.rotated_at ? when(c.rotated_at) : <span className="muted">never</span>}</td>
              <td><div className="row-actions">
                <button type="button" className="secondary" disabled={!roles.design} title={designTitle}
                  aria-label={`Rotate ${c.name}`} onClick={() => setDialog({ kind: "rotate", credential: c })}>Rotate…</button>
                <button type="button" className="secondary" disabled={!roles.use_credentials}
                  title={roles.use_credentials ? undefined : NEEDS_CREDENTIAL_USER}
                  aria-label={`Edit the allowed hosts of ${c.name}`}
                  onClick={() => setDialog({ kind: "hosts", credential: c })}>Hosts…</button>
                <button type="button" className="secondary" disabled={!roles.design} title={designTitle}
                  aria-label={`Delete ${c.name}`} onClick={() => setDialog({ kind: "delete", credential: c })}>Delete…</button>
              </div></td>
            </tr>
          ))}
        </tbody>
      </table>
      <section className="card" aria-labelledby="new-credential-heading" style={{ marginTop: "1rem" }}>
        <h2 id="new-credential-heading" style={{ marginTop: 0 }}>New credential</h2>
        {roles.design
          ? <CreateForm kinds={props.kinds || []} onCreated={(c) => {
            setNotice(`Credential ${c.name} saved. Its secret will not be shown again.`);
            load();
          }} />
          : <p><button type="button" disabled title={NEEDS_DESIGNER} aria-describedby="new-credential-why">Create credential</button>{" "}
            <span className="muted" id="new-credential-why">Creating credentials {NEEDS_DESIGNER}.</span></p>}
      </section>
      {dialog?.kind === "rotate" ? <SecretDialog credential={dialog.credential} onClose={() => setDialog(null)}
        onDone={(c) => done(`Credential ${c.name} rotated. The new secret will not be shown again.`)} /> : null}
      {dialog?.kind === "hosts" ? <HostsDialog credential={dialog.credential} onClose={() => setDialog(null)}
        onDone={(c) => done(`Allowed hosts of ${c.name} saved.`)} /> : null}
      {dialog?.kind === "delete" ? <DeleteDialog credential={dialog.credential} onClose={() => setDialog(null)}
        onDone={() => done(`Credential ${dialog.credential.name} deleted.`)} /> : null}
    </>
  );
}
