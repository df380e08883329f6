// A prediction's output as people read it: text as text, files (this server's, fetched with the
// key) as images, audio or video, lists of records as tables, objects as labelled values; the
// JSON itself one click away.

import { blobUrl, local } from "./api.js";
import { h } from "./dom.js";

const MAX_ROWS = 200;

export function output(value) {
  const preview = h("div", { class: "preview" }, render(value, 0));
  const raw = h("details", { class: "raw" }, h("summary", {}, "JSON"), h("pre", { class: "code" }, JSON.stringify(value, null, 2)));
  return h("div", { class: "output" }, preview, raw);
}

export function json(value) {
  return h("pre", { class: "code" }, JSON.stringify(value, null, 2));
}

function render(value, depth) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "null");
  if (typeof value === "string") return string(value);
  if (typeof value !== "object") return h("span", { class: "scalar" }, String(value));
  if (Array.isArray(value)) return array(value, depth);
  if (depth > 2) return json(value);
  return h(
    "dl",
    { class: "fields-out" },
    ...Object.entries(value).flatMap(([name, item]) => [h("dt", {}, name), h("dd", {}, render(item, depth + 1))]),
  );
}

function isFile(text) {
  return /^data:[\w.+-]+\/[\w.+-]+[;,]/.test(text) || /^https?:\/\/\S+$/.test(text);
}

function string(text) {
  if (!isFile(text)) return h("p", { class: "text" }, text);
  return file(text);
}

// A file output by URL: this server's are fetched with the key and shown as what they are;
// another site's are a link (the page loads nothing from elsewhere).
function file(url) {
  const holder = h("div", { class: "file-out" });
  const path = url.startsWith("data:") ? null : local(url);
  const name = url.startsWith("data:") ? "data URI" : url.split("/").pop();
  if (url.startsWith("data:")) {
    show(holder, url, url.slice(5, url.search(/[;,]/)), name);
  } else if (path === null) {
    holder.append(h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, url));
  } else {
    holder.append(h("span", { class: "muted" }, `Loading ${name}…`));
    blobUrl(path).then(
      (blob) => show(holder, blob.url, blob.type, name),
      (error) => holder.replaceChildren(h("span", { class: "field-error" }, `${name}: ${error.message}`)),
    );
  }
  return holder;
}

function show(holder, src, type, name) {
  let media;
  if (type.startsWith("image/")) media = h("img", { src, alt: `output ${name}` });
  else if (type.startsWith("audio/")) media = h("audio", { src, controls: true, "aria-label": `output ${name}` });
  else if (type.startsWith("video/")) media = h("video", { src, controls: true, "aria-label": `output ${name}` });
  const link = h("a", { href: src, download: name, class: "download" }, `Download ${name}`);
  holder.replaceChildren(...[media, link].filter(Boolean));
}

function isRecord(item) {
  return item !== null && typeof item === "object" && !Array.isArray(item);
}

function array(items, depth) {
  if (items.length === 0) return h("span", { class: "muted" }, "[]");
  if (items.every(isRecord)) {
    const columns = [...new Set(items.flatMap((item) => Object.keys(item)))];
    return table(columns, items.map((item) => columns.map((c) => item[c])));
  }
  if (items.every((row) => Array.isArray(row) && row.every((cell) => typeof cell !== "object"))) {
    const width = Math.max(...items.map((row) => row.length));
    return table(Array.from({ length: width }, (_, i) => String(i)), items);
  }
  if (items.every((item) => typeof item === "string" && isFile(item))) {
    return h("div", { class: "gallery" }, ...items.map(file));
  }
  const shares = items.every((item) => typeof item === "number" && item >= 0 && item <= 1);
  if (shares && items.length >= 2 && items.length <= 32 && !items.every(Number.isInteger)) {
    return bars(items);
  }
  if (items.every((item) => typeof item !== "object")) {
    return h("span", { class: "scalar" }, items.map((item) => (typeof item === "string" ? item : format(item))).join(", "));
  }
  return h("ol", { class: "items" }, ...items.slice(0, MAX_ROWS).map((item) => h("li", {}, render(item, depth + 1))));
}

// Shares (probabilities, scores in 0-1) as bars, the largest marked: what a person looks for.
function bars(values) {
  const top = values.indexOf(Math.max(...values));
  return h(
    "ol",
    { class: "bars", start: "0" },
    ...values.map((value, i) =>
      h(
        "li",
        { class: i === top ? "max" : null },
        h("span", { class: "bar-label" }, String(i)),
        h("span", { class: "share", "aria-hidden": "true" }, fill(value)),
        h("span", { class: "bar-value" }, format(value)),
      ),
    ),
  );
}

function fill(share) {
  const span = h("span");
  span.style.width = `${(share * 100).toFixed(1)}%`; // CSSOM: the page's CSP refuses style attributes
  return span;
}

function table(columns, rows) {
  const cell = (value) => (value !== null && typeof value === "object" ? JSON.stringify(value) : format(value));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...rows.slice(0, MAX_ROWS).map((row) => h("tr", {}, ...row.map((v) => h("td", {}, cell(v)))))),
    ),
    rows.length > MAX_ROWS ? h("p", { class: "muted" }, `${rows.length - MAX_ROWS} more rows in the JSON`) : null,
  );
}

function format(value) {
  if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(4).replace(/\.?0+$/, "");
  return value === undefined ? "" : String(value);
}
