// A form generated from a JSON Schema (the subset node configs and input schemas use): strings,
// numbers, integers, booleans, enums; objects and arrays without properties are edited as JSON.
import { useEffect, useState } from "react";
import { Ticks } from "./dialogs.jsx";
import { TemplateField } from "./TemplateField.jsx";

function JsonField({ id, value, onChange, invalid, onBad, required, placeholder }) {
  const [text, setText] = useState(() => (value === undefined ? "" : JSON.stringify(value, null, 2)));
  const [bad, setBadState] = useState(null);
  const setBad = (msg) => {
    setBadState(msg);
    if (onBad) onBad(msg);
  };
  useEffect(() => {
    // Follow outside changes (undo, import) unless the user is mid-edit with invalid JSON.
    if (!bad) setText(value === undefined ? "" : JSON.stringify(value, null, 2));
  }, [JSON.stringify(value)]);
  return (
    <>
      <textarea id={id} rows={4} value={text} aria-invalid={invalid || !!bad} aria-required={required || undefined}
        placeholder={placeholder}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === "") {
            setBad(null);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(e.target.value));
            setBad(null);
          } catch (err) {
            setBad(err.message);
          }
        }} />
      {bad ? <div className="field-error">Not valid JSON yet: {bad}</div> : null}
    </>
  );
}

// A schema value as one line of text, for "Default:" and "Example:" hints.
function hint(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// ``scope`` (a node's config in the editor): string fields complete and preview templates (TemplateField.jsx).
export function SchemaForm({ schema, value, onChange, idPrefix, errors = {}, onJsonError, scope }) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const v = value || {};
  const names = Object.keys(props);
  if (!names.length) {
    if (schema && schema.additionalProperties === false) return <p className="muted">No settings.</p>;
    return (
      <div className="field">
        <label htmlFor={`${idPrefix}-json`}>Value (JSON)</label>
        <JsonField id={`${idPrefix}-json`} value={value} onChange={onChange}
          onBad={onJsonError ? (msg) => onJsonError("", msg) : undefined} />
      </div>
    );
  }
  const set = (name, next) => {
    const out = { ...v };
    if (next === undefined || next === "") delete out[name];
    else out[name] = next;
    onChange(out);
  };
  return (
    <div className="schema-form">
      {names.map((name) => {
        const p = props[name] || {};
        const id = `${idPrefix}-${name}`;
        const type = Array.isArray(p.type) ? p.type.find((t) => t !== "null") : p.type;
        const err = errors[name];
        const req = required.has(name);
        const example = p.examples && p.examples.length ? p.examples[0] : p.example;
        const placeholder = example !== undefined ? `e.g. ${hint(example)}` : p.default !== undefined ? hint(p.default) : undefined;
        const common = { id, "aria-invalid": !!err, "aria-required": req || undefined };
        const label = (
          <label htmlFor={id}>
            {p.title || name}{req ? <span className="required" aria-label="required"> *</span> : null}
          </label>
        );
        let input;
        if (p.enum) {
          input = (
            <select {...common} value={v[name] ?? ""} onChange={(e) => set(name, e.target.value || undefined)}>
              <option value="">—</option>
              {p.enum.map((o) => <option key={String(o)} value={o}>{String(o)}</option>)}
            </select>
          );
        } else if (type === "boolean") {
          input = (
            <input id={id} type="checkbox" checked={!!v[name]} onChange={(e) => set(name, e.target.checked)} />
          );
        } else if (type === "integer" || type === "number") {
          input = (
            <input {...common} type="text" inputMode="decimal" value={v[name] ?? ""} placeholder={placeholder}
              onChange={(e) => {
                const raw = e.target.value.trim();
                if (raw === "") return set(name, undefined);
                const n = Number(raw);
                set(name, Number.isNaN(n) ? raw : n);
              }} />
          );
        } else if (type === "string" || (!type && !p.properties)) {
          const long = p.format === "textarea" || (p.maxLength || 0) > 200 || /prompt|body|template/i.test(name);
          input = scope ? (
            <TemplateField id={id} name={name} multiline={long} value={v[name]} scope={scope}
              inputProps={{ "aria-invalid": !!err, "aria-required": req || undefined, placeholder }}
              onChange={(next) => set(name, next)} />
          ) : long ? (
            <textarea {...common} rows={4} value={v[name] ?? ""} placeholder={placeholder}
              onChange={(e) => set(name, e.target.value)} />
          ) : (
            <input {...common} type="text" value={v[name] ?? ""} placeholder={placeholder}
              onChange={(e) => set(name, e.target.value)} />
          );
        } else {
          input = <JsonField id={id} value={v[name]} invalid={!!err} required={req} placeholder={placeholder}
            onChange={(next) => set(name, next)} onBad={onJsonError ? (msg) => onJsonError(name, msg) : undefined} />;
        }
        return (
          <div key={name} className={`field${err ? " invalid" : ""}`} data-field={name}>
            {label}
            {input}
            {p.description ? <div className="help">{p.description}</div> : null}
            {p.default !== undefined ? <div className="help" data-default={name}>Default: <code>{hint(p.default)}</code></div> : null}
            {example !== undefined ? <div className="help" data-example={name}>Example: <code>{hint(example)}</code></div> : null}
            {err ? <div className="field-error" role="alert"><Ticks text={err} /></div> : null}
          </div>
        );
      })}
    </div>
  );
}

// Default values from a schema's properties (for a new node's config).
export function schemaDefaults(schema) {
  const out = {};
  for (const [name, p] of Object.entries((schema && schema.properties) || {})) {
    if (p && p.default !== undefined) out[name] = p.default;
  }
  return out;
}
