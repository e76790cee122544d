// Live server-rendered lists: the runs table (over the run-list websocket) and the queues table.
function setLive(state, text) {
  const el = document.getElementById("live");
  if (el) {
    el.dataset.state = state;
    el.textContent = text;
  }
}

export function liveRuns() {
  const tbody = document.getElementById("run-rows");
  if (!tbody) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  let attempts = 0;
  let refresh = null;

  function reloadRows() {
    clearTimeout(refresh);
    refresh = setTimeout(async () => {
      const params = new URLSearchParams(location.search);
      params.set("partial", "rows");
      const response = await fetch(`${location.pathname}?${params}`, { credentials: "same-origin" });
      if (response.ok) tbody.innerHTML = await response.text();
    }, 150);
  }

  function open() {
    const socket = new WebSocket(`${proto}://${location.host}/ws/runs/`);
    socket.onopen = () => {
      if (attempts > 0) reloadRows(); // catch up on what changed while away
      attempts = 0;
      setLive("live", "Live");
    };
    socket.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type !== "run") return;
      const row = tbody.querySelector(`tr[data-run-id="${data.run.id}"]`);
      if (!row) {
        reloadRows();
        return;
      }
      const filters = new URLSearchParams(location.search);
      if (filters.get("status") && filters.get("status") !== data.run.status) {
        reloadRows();
        return;
      }
      reloadRows();
      row.classList.add("flash");
    };
    socket.onclose = (ev) => {
      if (ev.code >= 4400 && ev.code < 4500) {
        setLive("closed", "Not live");
        return;
      }
      setLive("reconnecting", "Reconnecting…");
      attempts += 1;
      setTimeout(open, Math.min(10000, 250 * 2 ** Math.min(attempts, 6)));
    };
  }
  open();
}

export function liveQueues(rowsId = "queue-rows") {
  const tbody = document.getElementById(rowsId);
  if (!tbody) return;
  async function tick() {
    try {
      const response = await fetch(`${location.pathname}?partial=rows`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      tbody.innerHTML = await response.text();
      setLive("live", "Live");
    } catch {
      setLive("reconnecting", "Reconnecting…");
    }
    setTimeout(tick, 2000);
  }
  setLive("live", "Live");
  setTimeout(tick, 2000);
}
