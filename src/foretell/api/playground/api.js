// The API as the page calls it: the key (this tab's sessionStorage, sent as a Bearer header,
// never in a URL), JSON requests with foretell's errors made readable, uploads, and a
// prediction's Server-Sent Events read through fetch (EventSource cannot send a header).

const KEY = "foretell.key";

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
  // {field: message} from a 422's detail list (loc: ["body", "input", field, ...]).
  fields() {
    const found = {};
    const detail = this.body && this.body.detail;
    if (!Array.isArray(detail)) return found;
    for (const item of detail) {
      const loc = (item.loc || []).filter((part) => part !== "body");
      if (loc[0] === "input" && loc.length > 1) {
        const rest = loc.slice(2).length ? ` (at ${loc.slice(2).join(".")})` : "";
        found[loc[1]] = (item.msg || "invalid") + rest;
      }
    }
    return found;
  }
}

function describe(body, response) {
  const detail = body && typeof body === "object" ? body.detail : null;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${item.msg}` : item.msg;
      })
      .join("; ");
  }
  if (typeof body === "string" && body) return body.slice(0, 300);
  return `${response.status} ${response.statusText}`;
}

function headers(extra = {}) {
  const all = { Accept: "application/json", ...extra };
  const value = key.get();
  if (value) all.Authorization = `Bearer ${value}`;
  return all;
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) throw new ApiError(response.status, describe(body, response), body);
  return body;
}

export async function get(path, signal) {
  return answer(await fetch(path, { headers: headers(), signal }));
}

export async function post(path, body) {
  const sent = { method: "POST", headers: headers({ "Content-Type": "application/json" }) };
  if (body !== undefined) sent.body = JSON.stringify(body);
  return answer(await fetch(path, sent));
}

// A file stored as the caller's (POST /v1/files, the raw body): its record, with urls.get.
export async function upload(file) {
  const query = new URLSearchParams({ filename: file.name || "file" });
  const type = file.type || "application/octet-stream";
  const response = await fetch(`/v1/files?${query}`, {
    method: "POST",
    headers: headers({ "Content-Type": type }),
    body: file,
  });
  return answer(response);
}

// A URL this server gave (its files, its `next` pages) as a path on the page's own origin: the
// server writes its own host name, which may not be the one the browser reached it by.
export function local(url) {
  try {
    const parsed = new URL(url, location.href);
    if (parsed.origin === location.origin || parsed.pathname.startsWith("/v1/")) {
      return parsed.pathname + parsed.search;
    }
  } catch {
    /* not a URL */
  }
  return null;
}

// A stored file's bytes as a blob: URL (an <img> cannot send the key).
export async function blobUrl(path) {
  const response = await fetch(path, { headers: headers({ Accept: "*/*" }) });
  if (!response.ok) throw new ApiError(response.status, `${response.status} for ${path}`, null);
  const blob = await response.blob();
  return { url: URL.createObjectURL(blob), type: blob.type };
}

// Start a streamed prediction: POST with "stream": true. Resolves to {id, events} once the
// server has accepted it, or throws its refusal (answered as JSON).
export async function createStreaming(body, signal) {
  const response = await fetch("/v1/predictions", {
    method: "POST",
    // Validate-Input: a wrong input is refused (422, naming its fields) before anything runs,
    // so the form can mark the fields, rather than a failed prediction to read.
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream", "Validate-Input": "true" }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  const type = response.headers.get("content-type") || "";
  if (!response.ok || !type.startsWith("text/event-stream")) await answer(response);
  return { id: response.headers.get("x-prediction-id"), events: read(response) };
}

// GET a prediction's stream from after `since` (an event id), as events.
export async function follow(id, since, signal) {
  const extra = { Accept: "text/event-stream" };
  if (since) extra["Last-Event-ID"] = since;
  const response = await fetch(`/v1/predictions/${encodeURIComponent(id)}/stream`, {
    headers: headers(extra),
    signal,
  });
  if (!response.ok) await answer(response);
  return read(response);
}

// Server-Sent Events from a fetch response's body: {event, data, id}, per the HTML spec's
// parsing (a leading space after the colon dropped; several data lines joined by newlines).
async function* read(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (event.data.length) yield { event: event.event, data: event.data.join("\n"), id: event.id };
          event = { event: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (name === "event") event.event = text;
        else if (name === "data") event.data.push(text);
        else if (name === "id") event.id = text;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
