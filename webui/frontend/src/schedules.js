// The Triggers tab's Schedules section: a human reading of each cron expression (cronstrue), the next fire
// times in the browser's time zone and the schedule's, and the Pause / Resume / Trigger now buttons, the
// backfill form and the create form, each calling the REST API.
import cronstrue from "cronstrue";
import { api } from "./api.js";

const userZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

function formatIn(iso, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone, weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  }).format(new Date(iso));
}

function cronText(expr) {
  try {
    return cronstrue.toString(expr, { use24HourTimeFormat: true, verbose: false });
  } catch {
    return "";
  }
}

function say(el, text, ok) {
  if (!el) return;
  el.textContent = text;
  el.dataset.state = ok ? "ok" : "error";
  el.hidden = !text;
}

function describe(card) {
  const data = JSON.parse(card.querySelector("script[type='application/json']").textContent);
  const human = card.querySelector("[data-cron-text]");
  if (human && data.cron) human.textContent = cronText(data.cron);
  const list = card.querySelector("[data-next-fires]");
  list.replaceChildren(...data.next_fire_times.map((iso) => {
    const li = document.createElement("li");
    const mine = document.createElement("span");
    mine.textContent = formatIn(iso, userZone);
    li.append(mine);
    if (data.timezone !== userZone) {
      const theirs = document.createElement("span");
      theirs.className = "muted";
      theirs.textContent = ` · ${formatIn(iso, data.timezone)}`;
      li.append(theirs);
    }
    return li;
  }));
  if (!data.next_fire_times.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No more fire times (the schedule has ended).";
    list.append(li);
  }
}

function readForm(form) {
  const body = {};
  for (const [name, value] of new FormData(form)) {
    if (value === "") continue;
    if (name === "inputs") body.inputs = JSON.parse(value);
    else if (["interval_s", "catchup_window_s", "jitter_s"].includes(name)) body[name] = Number(value);
    else if (["start_at", "end_at", "start", "end"].includes(name)) body[name] = new Date(value).toISOString();
    else body[name] = value;
  }
  if (form.elements.paused) body.paused = form.elements.paused.checked;
  return body;
}

async function submit(form, path, done) {
  const status = form.querySelector("[role='status']");
  let body;
  try {
    body = readForm(form);
  } catch (err) {
    say(status, `inputs: ${err.message}`, false);
    return;
  }
  try {
    const result = await api("POST", path, body);
    done(result, status);
  } catch (err) {
    say(status, err.message, false);
  }
}

export function schedulesSection() {
  const section = document.getElementById("schedules");
  if (!section) return;
  section.querySelectorAll("[data-schedule]").forEach(describe);
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("[data-schedule]");
    const status = card.querySelector("[data-card-status]");
    button.disabled = true;
    try {
      const result = await api("POST", `/api/schedules/${card.dataset.schedule}/${button.dataset.action}/`);
      if (button.dataset.action === "trigger") {
        say(status, `Started run ${result.id}.`, true);
        const link = document.createElement("a");
        link.href = `/runs/${result.id}/`;
        link.textContent = " Open it";
        status.append(link);
      } else {
        location.reload();
      }
    } catch (err) {
      say(status, err.message, false);
    } finally {
      button.disabled = false;
    }
  });
  section.querySelectorAll("form[data-backfill]").forEach((form) => form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form, `/api/schedules/${form.dataset.backfill}/backfill/`, (r, status) => say(status,
      `${r.fire_times} fire times: ${r.started} started, ${r.buffered} buffered, ${r.skipped} skipped, ` +
      `${r.failed} failed, ${r.already} backfilled before.`, true));
  }));
  const create = section.querySelector("form[data-create]");
  if (create) {
    const cron = create.elements.cron;
    const reading = create.querySelector("[data-cron-preview]");
    const preview = () => { reading.textContent = cron.value ? cronText(cron.value) || "not a cron expression" : ""; };
    cron.addEventListener("input", preview);
    if (!create.elements.timezone.value) create.elements.timezone.value = userZone;
    create.addEventListener("submit", (event) => {
      event.preventDefault();
      submit(create, `/api/workflows/${create.dataset.create}/schedules/`, () => location.reload());
    });
  }
}
