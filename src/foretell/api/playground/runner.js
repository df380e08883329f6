// One prediction as it runs: its status (announced), queue position, logs and output as they
// stream, then its record once it has ended. Resumes a cut stream from its last event id.

import { ApiError, createStreaming, follow, get, post } from "./api.js";
import { badge, duration, h, TERMINAL } from "./dom.js";
import * as render from "./render.js";

const RESUMES = 5;
const QUEUE_POLL_MS = 1000;

// How a model's output arrives on the stream: "text" (pieces of one string), "items" (one JSON
// item each) or "whole" (one JSON event at the end), from its output schema (Cog's iterator).
export function streamMode(schema) {
  if (schema && schema["x-cog-array-type"] === "iterator") {
    return schema["x-cog-array-display"] === "concatenate" ? "text" : "items";
  }
  return "whole";
}

export class Panel {
  constructor() {
    this.status = h("div", { class: "run-status", role: "status", "aria-live": "polite" }, h("span", { class: "muted" }, "Not run yet"));
    this.outputBox = h("div", { class: "output-box", "data-state": "empty" }, h("p", { class: "muted placeholder" }, "The output appears here."));
    this.errorBox = h("div", { class: "error-box", hidden: true, role: "alert" });
    this.logs = h("pre", { class: "code logs" });
    this.logsBox = h("details", { class: "logs-box", hidden: true }, h("summary", {}, "Logs"), this.logs);
    this.metrics = h("dl", { class: "metrics" });
    this.cancelButton = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => this.cancel() }, "Cancel");
    this.link = h("a", { class: "record-link", hidden: true }, "Open record");
    this.element = h(
      "section",
      { class: "panel", "aria-label": "Prediction" },
      h("div", { class: "panel-head" }, this.status, h("div", { class: "panel-actions" }, this.cancelButton, this.link)),
      this.errorBox,
      this.outputBox,
      this.logsBox,
      this.metrics,
    );
    this.abort = null;
  }

  reset(mode) {
    this.stop();
    this.mode = mode;
    this.id = null;
    this.lastId = null;
    this.text = "";
    this.items = [];
    this.ended = null;
    this.abort = new AbortController();
    this.logs.textContent = "";
    this.logsBox.hidden = true;
    this.errorBox.hidden = true;
    this.metrics.replaceChildren();
    this.link.hidden = true;
    this.outputBox.dataset.state = "empty";
    this.outputBox.replaceChildren(h("p", { class: "muted placeholder" }, "Waiting for output…"));
  }

  stop() {
    if (this.abort) this.abort.abort();
    clearInterval(this.ticker);
    clearTimeout(this.poller);
  }

  // Create a prediction from `body` and follow it to its end; its record, or throws a refusal.
  async run(body, mode) {
    this.reset(mode);
    this.setStatus("starting");
    this.started = Date.now();
    let created;
    try {
      created = await createStreaming(body, this.abort.signal);
    } catch (error) {
      this.setStatus(null);
      throw error;
    }
    this.attach(created.id);
    return this.consume(created.events);
  }

  // Follow an existing prediction (a record page): from its start, to show all it did.
  async watch(id, mode) {
    this.reset(mode);
    this.started = Date.now();
    this.attach(id);
    return this.consume(await follow(id, null, this.abort.signal));
  }

  attach(id) {
    this.id = id;
    this.link.href = `#/predictions/${encodeURIComponent(id)}`;
    this.link.hidden = false;
    this.cancelButton.hidden = false;
  }

  async consume(events) {
    for (let tries = 0; ; tries++) {
      try {
        for await (const event of events) {
          if (event.id) this.lastId = event.id;
          this.handle(event);
        }
      } catch (error) {
        if (error.name === "AbortError") return null;
      }
      // Ended without `done`: cut (the server said so, or the connection dropped); resume.
      if (this.ended || tries >= RESUMES) break;
      try {
        events = await follow(this.id, this.lastId, this.abort.signal);
      } catch (error) {
        if (error.name === "AbortError") return null;
        break;
      }
    }
    return this.finish();
  }

  handle(event) {
    const data = event.data;
    switch (event.event) {
      case "status":
        this.setStatus(JSON.parse(data).status);
        return null;
      case "logs":
        this.logs.textContent += data.endsWith("\n") ? data : `${data}\n`;
        this.logsBox.hidden = false;
        return null;
      case "output":
        this.grow(data);
        return null;
      case "error": {
        const body = JSON.parse(data);
        if (!body.resume) this.showError(body.error);
        return null;
      }
      case "done":
        this.ended = JSON.parse(data).status;
        return null;
      default:
        return null;
    }
  }

  grow(data) {
    if (this.mode === "text") {
      this.text += data;
      this.showPartial(h("p", { class: "text streaming" }, this.text, h("span", { class: "caret", "aria-hidden": "true" })));
    } else if (this.mode === "items") {
      this.items.push(JSON.parse(data));
      this.showPartial(render.output(this.items));
    } else {
      this.outputBox.dataset.state = "partial";
      this.outputBox.replaceChildren(render.output(JSON.parse(data)));
    }
  }

  showPartial(node) {
    this.outputBox.dataset.state = "partial";
    this.outputBox.replaceChildren(node);
  }

  showError(error) {
    if (!error) return;
    this.errorBox.replaceChildren(
      h("strong", {}, `${error.source === "user" ? "Input error" : "Failed"}: `),
      error.message || "failed",
      error.detail ? h("pre", { class: "code" }, typeof error.detail === "string" ? error.detail : JSON.stringify(error.detail, null, 2)) : null,
    );
    this.errorBox.hidden = false;
  }

  setStatus(status) {
    this.current = status;
    clearInterval(this.ticker);
    clearTimeout(this.poller);
    if (status === null) {
      this.status.replaceChildren(h("span", { class: "muted" }, "Not run"));
      return;
    }
    const detail = h("span", { class: "status-detail" });
    this.status.replaceChildren(badge(status), detail);
    if (status === "pending") this.pollQueue(detail);
    if (status === "processing" || status === "starting") {
      const tick = () => (detail.textContent = `${((Date.now() - this.started) / 1000).toFixed(1)} s`);
      tick();
      this.ticker = setInterval(tick, 100);
    }
    if (TERMINAL.has(status)) this.cancelButton.hidden = true;
  }

  // The queue position is on the record, not the stream: read it while the prediction waits.
  pollQueue(detail) {
    const look = async () => {
      if (this.current !== "pending" || !this.id) return;
      try {
        const record = await get(`/v1/predictions/${encodeURIComponent(this.id)}`, this.abort.signal);
        if (this.current !== "pending") return;
        const queue = record.queue;
        if (queue) {
          const eta = queue.eta_s === null ? "" : ` · about ${Math.ceil(queue.eta_s)} s`;
          // The API counts from 0 ("runs next"); people count from 1.
          detail.textContent = `#${queue.position + 1} of ${queue.depth} in the queue${eta}`;
        }
      } catch {
        return;
      }
      this.poller = setTimeout(look, QUEUE_POLL_MS);
    };
    this.poller = setTimeout(look, 200);
  }

  async cancel() {
    if (!this.id) return;
    try {
      await post(`/v1/predictions/${encodeURIComponent(this.id)}/cancel`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) this.showError({ message: error.message });
    }
  }

  // The record as it ended: the whole output rendered, its timings.
  async finish() {
    let record;
    try {
      record = await get(`/v1/predictions/${encodeURIComponent(this.id)}`, this.abort.signal);
    } catch (error) {
      this.showError({ message: `could not read the record: ${error.message}` });
      return null;
    }
    this.show(record);
    return record;
  }

  show(record) {
    this.id = record.id;
    this.attach(record.id);
    this.setStatus(record.status);
    if (record.error) this.showError(record.error);
    if (record.logs) {
      this.logs.textContent = record.logs;
      this.logsBox.hidden = false;
    }
    const terminal = TERMINAL.has(record.status);
    if (record.output !== null && record.output !== undefined) {
      this.outputBox.replaceChildren(render.output(record.output));
      this.outputBox.dataset.state = terminal ? "final" : "partial";
    } else if (terminal) {
      this.outputBox.dataset.state = "final";
      this.outputBox.replaceChildren(h("p", { class: "muted placeholder" }, record.data_removed ? "Output removed (retention)." : "No output."));
    }
    const rows = [
      ["Queued", duration(record.queue_time)],
      ["Setup", duration(record.setup_time)],
      ["Ran", duration(record.execution_time)],
      ["Model", `${record.model.owner}/${record.model.name}:${record.model.version_number}`],
    ].filter(([, value]) => value);
    this.metrics.replaceChildren(...rows.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value))));
  }
}
