// The playground's views, one per address after the #: the key (#/key), the models the key may
// run (#/), a model's form and run (#/models/OWNER/NAME), the predictions (#/predictions) and one
// prediction's record (#/predictions/ID).

import { ApiError, get, key, local } from "./api.js";
import { badge, copy, duration, h, when } from "./dom.js";
import { buildForm, FieldError, jsonForm } from "./form.js";
import * as render from "./render.js";
import { Panel, streamMode } from "./runner.js";
import { snippets } from "./snippets.js";

const STATUSES = ["pending", "processing", "succeeded", "failed", "canceled", "aborted"];
const main = document.getElementById("main");
const keyStatus = document.getElementById("key-status");
let leaving = []; // what the current view stops when another is shown

function show(title, ...children) {
  for (const stop of leaving) stop();
  leaving = [];
  const heading = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(heading, ...children);
  document.title = `${typeof title === "string" ? title : title.textContent} · foretell`;
  heading.focus({ preventScroll: true });
  for (const link of document.querySelectorAll("nav a")) {
    const current = location.hash.startsWith(link.getAttribute("href")) && link.getAttribute("href") !== "#/"
      ? true
      : link.getAttribute("href") === "#/" && (location.hash === "" || location.hash === "#/" || location.hash.startsWith("#/models"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function failure(error) {
  if (error instanceof ApiError && error.status === 401) {
    key.clear();
    location.hash = "#/key";
    return h("p", {}, "");
  }
  return h("div", { class: "error-box", role: "alert" }, error.message);
}

function showKey() {
  const value = key.get();
  const shown = [
    value
      ? h("span", { class: "key-chip" }, h("span", { class: "muted" }, "Key "), h("code", {}, `${value.slice(0, 7)}…`))
      : null,
    value ? h("button", { type: "button", class: "link", onclick: () => { key.clear(); showKey(); location.hash = "#/key"; } }, "Sign out") : null,
  ];
  keyStatus.replaceChildren(...shown.filter(Boolean));
}

// #/key: the key, entered once, checked against GET /v1/models, kept for this tab only.
function keyView() {
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "api-key-hint" });
  const error = h("p", { class: "field-error", role: "alert" });
  const form = h(
    "form",
    { class: "card key-card" },
    h("label", { for: "api-key", class: "label" }, "API key"),
    input,
    h("p", { class: "hint", id: "api-key-hint" }, "Kept in this browser tab only (sessionStorage) and sent as an Authorization header. The admin key of ", h("code", {}, "make run"), " is in ", h("code", {}, ".foretell/admin-key"), "; ", h("code", {}, "foretell keys create"), " makes others."),
    error,
    h("button", { type: "submit", class: "primary" }, "Continue"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    key.set(input.value.trim());
    try {
      await get("/v1/models");
    } catch (problem) {
      key.clear();
      error.textContent = problem.status === 401 ? "This key was not accepted: check it and try again." : problem.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    showKey();
    location.hash = "#/";
  });
  show("Welcome to foretell", h("p", { class: "lead" }, "Run the models this server serves, watch their output arrive and copy the same call as code."), form);
  input.focus();
}

// #/: the models the key may see.
async function modelsView() {
  const grid = h("div", { class: "grid", "aria-busy": "true" });
  show("Models", grid);
  try {
    const { results } = await get("/v1/models");
    grid.removeAttribute("aria-busy");
    if (!results.length) grid.append(h("p", { class: "muted" }, "This key may run no models."));
    for (const model of results) {
      const latest = model.versions.find((v) => v.version_number === model.latest_version) || model.versions[0];
      grid.append(
        h(
          "a",
          { class: "card model-card", href: `#/models/${model.owner}/${model.name}` },
          h("div", { class: "card-head" }, h("h2", {}, h("span", { class: "muted" }, `${model.owner}/`), model.name), latest ? badge(latest.status) : null),
          h("p", { class: "description" }, model.description || ""),
          h("p", { class: "meta" }, `v${model.latest_version ?? "–"}`, latest ? ` · ${latest.runtime}` : ""),
        ),
      );
    }
  } catch (error) {
    grid.replaceWith(failure(error));
  }
}

function codeTabs(entries) {
  const tabs = h("div", { role: "tablist", class: "tabs", "aria-label": "The same call as code" });
  const panels = h("div", { class: "tab-panels" });
  const select = (index, focus) => {
    [...tabs.children].forEach((tab, i) => {
      tab.setAttribute("aria-selected", String(i === index));
      tab.tabIndex = i === index ? 0 : -1;
      panels.children[i].hidden = i !== index;
    });
    if (focus) tabs.children[index].focus();
  };
  entries.forEach((entry, i) => {
    const tab = h("button", { type: "button", role: "tab", id: `tab-${i}`, "aria-controls": `tabpanel-${i}`, onclick: () => select(i, false) }, entry.name);
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) select((i + step + entries.length) % entries.length, true);
    });
    tabs.append(tab);
    const button = h("button", { type: "button", class: "secondary copy" }, "Copy");
    button.addEventListener("click", async () => {
      await copy(entry.code);
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
    panels.append(h("div", { role: "tabpanel", id: `tabpanel-${i}`, "aria-labelledby": `tab-${i}`, class: "snippet" }, button, h("pre", { class: "code", tabindex: "0" }, entry.code)));
  });
  select(0, false);
  return h("section", { class: "code-section", "aria-label": "API" }, h("h2", {}, "API"), tabs, panels);
}

// #/models/OWNER/NAME: the form from the version's input schema, Run, the output as it comes.
async function modelView(owner, name) {
  const body = h("div", { class: "model-page", "aria-busy": "true" });
  show(h("span", {}, h("span", { class: "muted" }, `${owner}/`), name), body);
  let model;
  try {
    model = await get(`/v1/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`);
  } catch (error) {
    body.replaceWith(failure(error));
    return;
  }
  body.removeAttribute("aria-busy");
  const versions = model.versions;
  const picker = h("select", { id: "version" }, ...versions.map((v) => h("option", { value: v.version_number }, `v${v.version_number} · ${v.status}`)));
  picker.value = String(model.latest_version ?? versions[0]?.version_number);
  const description = h("p", { class: "lead" });
  const formHolder = h("div");
  const formError = h("div", { class: "error-box", role: "alert", hidden: true });
  const run = h("button", { type: "submit", class: "primary" }, "Run");
  const reset = h("button", { type: "button", class: "secondary" }, "Reset");
  const mode = h("button", { type: "button", class: "link", "aria-pressed": "false" }, "Edit as JSON");
  const form = h("form", { class: "card run-form", "aria-label": "Input", novalidate: true }, h("div", { class: "form-head" }, h("h2", {}, "Input"), mode), formHolder, formError, h("div", { class: "actions" }, reset, run));
  const panel = new Panel();
  leaving.push(() => panel.stop());
  const outputCard = h("div", { class: "card" }, h("h2", {}, "Output"), panel.element);
  const code = h("div");
  body.append(
    h("div", { class: "model-head" }, description, h("div", { class: "version-pick" }, h("label", { for: "version", class: "label" }, "Version"), picker)),
    h("div", { class: "columns" }, form, outputCard),
    code,
  );
  let built;
  let version;
  const ref = () => (String(version.version_number) === String(model.latest_version) ? `${owner}/${name}` : `${owner}/${name}:${version.version_number}`);
  const snippetsFor = (input) => code.replaceChildren(codeTabs(snippets(location.origin, ref(), input, streamMode(version.output_schema) !== "whole")));
  const current = () => built.partial();
  let asJson = false;
  const fieldless = () => Object.keys((version.input_schema || {}).properties || {}).length === 0;
  const build = (input) => {
    built = asJson || fieldless() ? jsonForm(input) : buildForm(version.input_schema);
    if (!asJson && !fieldless() && input) built.fill(input);
    mode.hidden = fieldless();
    mode.textContent = asJson ? "Edit as form" : "Edit as JSON";
    mode.setAttribute("aria-pressed", String(asJson));
    formHolder.replaceChildren(built.element);
  };
  mode.addEventListener("click", () => {
    let input = built.partial();
    if (asJson) {
      try {
        input = built.read();
      } catch (error) {
        built.errors({ input: error.message.replace(/^input: /, "") });
        return;
      }
    }
    asJson = !asJson;
    build(input);
  });
  const choose = () => {
    version = versions.find((v) => String(v.version_number) === picker.value) || versions[0];
    description.textContent = version.description || model.description || "";
    build(null);
    if (version.status !== "ready") formHolder.prepend(h("p", { class: "notice" }, `This version is ${version.status}: a run answers "not ready" until it has loaded.`));
    snippetsFor(current());
  };
  picker.addEventListener("change", choose);
  form.addEventListener("input", () => snippetsFor(current()));
  form.addEventListener("change", () => snippetsFor(current()));
  reset.addEventListener("click", choose);
  choose();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    let input;
    try {
      await built.ready();
      input = built.read();
    } catch (error) {
      if (error instanceof FieldError) built.errors({ [error.field]: error.message.slice(error.field.length + 2) });
      else showFormError(formError, error.message);
      return;
    }
    snippetsFor(input);
    run.disabled = true;
    run.textContent = "Running…";
    try {
      await panel.run({ model: ref(), input }, streamMode(version.output_schema));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        main.replaceChildren(failure(error));
        return;
      }
      const fields = error instanceof ApiError ? error.fields() : {};
      if (!built.errors(fields)) showFormError(formError, error.message);
      else showFormError(formError, "Check the fields marked above.");
    } finally {
      run.disabled = false;
      run.textContent = "Run";
    }
  });
}

function showFormError(box, message) {
  box.textContent = message;
  box.hidden = false;
}

// #/predictions?model=&status=: the key's predictions, newest first, a page at a time.
async function predictionsView(params) {
  const model = h("select", { id: "filter-model", name: "model" }, h("option", { value: "" }, "All models"));
  const status = h("select", { id: "filter-status", name: "status" }, h("option", { value: "" }, "Any status"), ...STATUSES.map((s) => h("option", { value: s }, s)));
  const filters = h(
    "form",
    { class: "filters", "aria-label": "Filters" },
    h("div", { class: "field" }, h("label", { for: "filter-model", class: "label" }, "Model"), model),
    h("div", { class: "field" }, h("label", { for: "filter-status", class: "label" }, "Status"), status),
  );
  const rows = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap card flush" },
    h("table", { class: "predictions" },
      h("thead", {}, h("tr", {}, ...["Prediction", "Model", "Status", "Created", "Ran"].map((c) => h("th", { scope: "col" }, c)))),
      rows,
    ),
  );
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const empty = h("p", { class: "muted", hidden: true }, "No predictions yet.");
  show("Predictions", filters, table, empty, h("div", { class: "actions center" }, more));
  const change = () => {
    const query = new URLSearchParams();
    if (model.value) query.set("model", model.value);
    if (status.value) query.set("status", status.value);
    location.hash = `#/predictions${query.size ? `?${query}` : ""}`;
  };
  model.addEventListener("change", change);
  status.addEventListener("change", change);
  status.value = params.get("status") || "";
  // The filter in force is an option at once: the list of models arrives later.
  const chosen = params.get("model");
  if (chosen) model.append(h("option", { value: chosen }, chosen));
  model.value = chosen || "";
  get("/v1/models").then(({ results }) => {
    for (const m of results) {
      const ref = `${m.owner}/${m.name}`;
      if (ref !== chosen) model.append(h("option", { value: ref }, ref));
    }
  }, () => {});
  const query = new URLSearchParams({ limit: "25" });
  if (params.get("model")) query.set("model", params.get("model"));
  if (params.get("status")) query.set("status", params.get("status"));
  let next = `/v1/predictions?${query}`;
  const load = async () => {
    more.disabled = true;
    try {
      const page = await get(next);
      for (const p of page.results) {
        const href = `#/predictions/${encodeURIComponent(p.id)}`;
        rows.append(
          h("tr", {},
            h("td", {}, h("a", { href, class: "mono" }, p.id.slice(0, 8))),
            h("td", {}, `${p.model.owner}/${p.model.name}:${p.model.version_number}`),
            h("td", {}, badge(p.status)),
            h("td", { title: p.created_at }, when(p.created_at)),
            h("td", {}, duration(p.execution_time) || "–"),
          ),
        );
      }
      empty.hidden = rows.children.length > 0;
      next = page.next ? local(page.next) : null;
      more.hidden = !next;
    } catch (error) {
      table.replaceWith(failure(error));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  await load();
}

// #/predictions/ID: one record: status, input, output, logs; followed live while it runs.
async function predictionView(id) {
  const body = h("div", { class: "prediction-page" });
  show(h("span", {}, "Prediction ", h("code", {}, id.slice(0, 8))), body);
  let record;
  try {
    record = await get(`/v1/predictions/${encodeURIComponent(id)}`);
  } catch (error) {
    body.replaceWith(failure(error));
    return;
  }
  const panel = new Panel();
  leaving.push(() => panel.stop());
  const modelRef = `${record.model.owner}/${record.model.name}`;
  body.append(
    h("p", { class: "lead" }, h("a", { href: `#/models/${modelRef}` }, `${modelRef}:${record.model.version_number}`), ` · created ${new Date(record.created_at).toLocaleString()} · `, h("code", {}, record.id)),
    h("div", { class: "columns" },
      h("div", { class: "card" }, h("h2", {}, "Input"), render.output(record.input)),
      h("div", { class: "card" }, h("h2", {}, "Output"), panel.element),
    ),
    h("details", { class: "card raw-record" }, h("summary", {}, "The whole record (JSON)"), render.json(record)),
  );
  panel.show(record);
  if (!["succeeded", "failed", "canceled", "aborted"].includes(record.status)) {
    let schema = null;
    try {
      const version = await get(`/v1/models/${modelRef}/versions/${record.model.version_number}`);
      schema = version.output_schema;
    } catch {
      /* followed as a whole output */
    }
    panel.watch(id, streamMode(schema));
  }
}

function route() {
  showKey();
  const [path, search] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (!key.get() || parts[0] === "key") return keyView();
  if (parts[0] === "models" && parts.length === 3) return modelView(parts[1], parts[2]);
  if (parts[0] === "predictions" && parts.length === 2) return predictionView(parts[1]);
  if (parts[0] === "predictions") return predictionsView(params);
  return modelsView();
}

window.addEventListener("hashchange", route);
route();
