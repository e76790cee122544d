// A config field that accepts templates: as the designer types inside `{{ ... }}` it lists what the template
// can name there (completions.js; a combobox with a listbox: arrows move, Enter or Tab chooses, Escape closes),
// and under the field it shows the template's value in the workflow's last run, rendered by the server with the
// worker's template engine (POST /api/workflows/{slug}/template-preview/).
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { get, post } from "./api.js";
import { completions, pathAtCaret } from "./completions.js";
import { Ticks } from "./dialogs.jsx";
import { shortId } from "./status.jsx";

const samples = new Map(); // slug -> {at, promise}: the last run's sample, read again after 5 s

function useSample(slug) {
  const [sample, setSample] = useState(null);
  useEffect(() => {
    if (!slug) return undefined;
    let cached = samples.get(slug);
    if (!cached || Date.now() - cached.at > 5000) {
      cached = { at: Date.now(), promise: get(`/api/workflows/${slug}/sample/`).catch(() => null) };
      samples.set(slug, cached);
    }
    let live = true;
    cached.promise.then((s) => { if (live) setSample(s); });
    return () => { live = false; };
  }, [slug]);
  return sample;
}

const isTemplate = (v) => typeof v === "string" && (v.includes("{{") || v.includes("{%"));

function usePreview(slug, value, direct) {
  const [preview, setPreview] = useState(null);
  const key = JSON.stringify(direct);
  useEffect(() => {
    if (!isTemplate(value)) { setPreview(null); return undefined; }
    if (!slug) { setPreview({ ok: false, message: "no run yet: save and run the workflow to preview its templates" }); return undefined; }
    let live = true;
    const timer = setTimeout(() => {
      post(`/api/workflows/${slug}/template-preview/`, { template: value, upstream: direct })
        .then((p) => { if (live) setPreview(p); })
        .catch((err) => { if (live) setPreview({ ok: false, message: `no preview: ${err.message}` }); });
    }, 250);
    return () => { live = false; clearTimeout(timer); };
  }, [slug, value, key]);
  return preview;
}

function Preview({ name, preview }) {
  if (!preview) return null;
  const run = preview.run ? <>run <code>{shortId(preview.run.id)}</code> ({preview.run.status})</> : null;
  return (
    <div className={`template-preview${preview.ok ? "" : " missing"}`} data-template-preview={name} aria-live="polite">
      {preview.ok ? (
        <>
          <span className="muted">Value in the last run{run ? <>, {run}</> : null}:</span>
          <pre data-preview-value>{preview.text}{preview.truncated ? "…" : ""}</pre>
        </>
      ) : <span>Preview{run ? <> ({run})</> : null}: <Ticks text={preview.message} /></span>}
    </div>
  );
}

export function TemplateField({ id, name, multiline, value, onChange, scope, inputProps }) {
  const sample = useSample(scope.slug);
  const preview = usePreview(scope.slug, value, scope.direct);
  const ref = useRef(null);
  // Where the caret goes once a chosen completion is in the field: set as React writes the new value, before the
  // next key is handled (a frame later, keys typed meanwhile would land before the caret's old place).
  const caretAfter = useRef(null);
  useLayoutEffect(() => {
    const el = ref.current, after = caretAfter.current;
    if (el === null || after === null) return;
    caretAfter.current = null;
    if (document.activeElement !== el) el.focus();
    el.setSelectionRange(after, after);
  });
  const [at, setAt] = useState(null); // pathAtCaret while the list is open, else null
  const [active, setActive] = useState(0);
  const options = completions(at, { ...scope, sample });
  const open = options.length > 0;
  const listId = `${id}-completions`;
  const optionId = (i) => `${id}-completion-${i}`;
  const look = (el) => {
    setAt(pathAtCaret(el.value, el.selectionStart ?? el.value.length));
    setActive(0);
  };
  const choose = (option) => {
    const el = ref.current;
    const caret = el.selectionStart ?? el.value.length;
    const text = el.value.slice(0, at.start) + option.name + el.value.slice(caret);
    caretAfter.current = at.start + option.name.length;
    onChange(text);
    setAt(null);
  };
  const onKeyDown = (e) => {
    if (!open) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      setActive((a) => (a + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length);
    } else if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      choose(options[Math.min(active, options.length - 1)]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      setAt(null);
    }
  };
  const aria = {
    "aria-autocomplete": "list",
    "aria-controls": open ? listId : undefined,
    "aria-activedescendant": open ? optionId(Math.min(active, options.length - 1)) : undefined,
  };
  const props = {
    ...inputProps, ...aria, id, ref, value: value ?? "", onKeyDown, autoComplete: "off", spellCheck: false,
    onChange: (e) => { onChange(e.target.value); look(e.target); },
    onClick: (e) => look(e.target),
    onKeyUp: (e) => { if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) look(e.target); },
    onBlur: () => setAt(null),
  };
  return (
    <>
      {multiline ? <textarea rows={4} {...props} />
        : <input type="text" role="combobox" aria-expanded={open} {...props} />}
      {open ? (
        <ul className="completions" role="listbox" id={listId} aria-label={`Completions for ${name}`}>
          {options.map((o, i) => (
            <li key={o.name} id={optionId(i)} role="option" aria-selected={i === active}
              className={i === active ? "active" : ""} data-completion={o.name}
              onMouseDown={(e) => { e.preventDefault(); choose(o); }}>
              <code>{o.name}</code>{o.detail ? <span className="muted"> {o.detail}</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
      <Preview name={name} preview={preview} />
    </>
  );
}
