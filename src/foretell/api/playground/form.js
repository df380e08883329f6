// A model's input JSON Schema as a form: one labelled field per property (numbers with their
// limits, strings, enums as selects, booleans, arrays, files uploaded as they are chosen),
// descriptions and defaults as hints. `read()` gives the input object, or throws naming a field.

import { upload } from "./api.js";
import { h, size } from "./dom.js";

let counter = 0;

export class FieldError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

function resolve(schema, root) {
  if (schema && schema.$ref && schema.$ref.startsWith("#/")) {
    let found = root;
    for (const part of schema.$ref.slice(2).split("/")) found = found ? found[part] : undefined;
    return { ...(found || {}), ...schema, $ref: undefined };
  }
  return schema || {};
}

// The one shape a field is drawn as, from a property's schema (anyOf/oneOf: a file if any
// branch is a URI string, else the first branch that is not null).
function shape(schema, root) {
  schema = resolve(schema, root);
  const options = schema.anyOf || schema.oneOf;
  if (options) {
    const branches = options.map((option) => resolve(option, root));
    const file = branches.find(isUri);
    if (file) return { ...schema, ...file, anyOf: undefined, oneOf: undefined, file: true, others: branches };
    const first = branches.find((b) => b.type !== "null") || {};
    return { ...first, title: schema.title, description: schema.description, default: schema.default };
  }
  return { ...schema, file: isUri(schema) };
}

function isUri(schema) {
  return schema.type === "string" && ["uri", "binary", "data-url"].includes(schema.format);
}

// An example value of a schema, for a placeholder.
export function example(schema, root) {
  schema = shape(schema, root);
  if (schema.default !== undefined) return schema.default;
  if (schema.examples && schema.examples.length) return schema.examples[0];
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case "integer":
    case "number":
      return schema.minimum ?? 0;
    case "boolean":
      return false;
    case "string":
      return schema.file ? "https://…" : "";
    case "array":
      return Array.from({ length: Math.max(1, schema.minItems || 1) }, () => example(schema.items || {}, root));
    case "object": {
      const value = {};
      for (const [name, sub] of Object.entries(schema.properties || {})) value[name] = example(sub, root);
      return value;
    }
    default:
      return null;
  }
}

function scalarArray(schema, root) {
  const items = shape(schema.items || {}, root);
  return ["number", "integer", "string"].includes(items.type) && !items.file ? items : null;
}

export function buildForm(inputSchema) {
  const root = inputSchema || {};
  const required = new Set(root.required || []);
  const fields = Object.entries(root.properties || {}).map(([name, schema]) =>
    field(name, shape(schema, root), required.has(name), root),
  );
  const element = h("div", { class: "fields" }, ...fields.map((f) => f.element));
  return {
    element,
    fields,
    // Once every chosen file is uploaded (a failed upload throws, naming its field).
    async ready() {
      for (const f of fields) {
        try {
          await f.pending();
        } catch (error) {
          throw new FieldError(f.name, `upload failed: ${error.message}`);
        }
      }
    },
    read() {
      const input = {};
      for (const f of fields) {
        f.invalid(null);
        const value = f.read();
        if (value !== undefined) input[f.name] = value;
      }
      return input;
    },
    // What is filled in so far, leaving out what cannot be read yet (for the code shown).
    partial() {
      const input = {};
      for (const f of fields) {
        try {
          const value = f.read();
          if (value !== undefined) input[f.name] = value;
        } catch {
          /* not filled in yet */
        }
      }
      return input;
    },
    fill(input) {
      for (const f of fields) if (input && input[f.name] !== undefined) f.write(input[f.name]);
    },
    errors(byField) {
      let first = null;
      for (const f of fields) {
        if (byField[f.name]) {
          f.invalid(byField[f.name]);
          first = first || f;
        }
      }
      if (first) first.focus();
      return first !== null;
    },
  };
}

function field(name, schema, required, root) {
  const id = `field-${++counter}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  // The property's own name beside its title, outside the label: a field is called by its title.
  const label = h(
    "div",
    { class: "label" },
    h("label", { for: id }, schema.title || name),
    required ? h("span", { class: "required", "aria-hidden": "true" }, "*") : null,
    schema.title && schema.title !== name ? h("code", { class: "name" }, name) : null,
  );
  const hints = [];
  if (schema.description) hints.push(schema.description);
  const limits = [];
  if (schema.minimum !== undefined) limits.push(`min ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) limits.push(`above ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) limits.push(`max ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) limits.push(`below ${schema.exclusiveMaximum}`);
  if (schema.minItems) limits.push(`at least ${schema.minItems} items`);
  if (schema.maxItems) limits.push(`at most ${schema.maxItems} items`);
  if (schema.minLength) limits.push(`at least ${schema.minLength} characters`);
  if (schema.maxLength) limits.push(`at most ${schema.maxLength} characters`);
  if (limits.length) hints.push(limits.join(", "));
  if (schema.default !== undefined) hints.push(`default ${JSON.stringify(schema.default)}`);
  const hint = h("p", { class: "hint", id: hintId }, hints.join(" · "));
  const error = h("p", { class: "field-error", id: errorId, role: "alert" });
  const control = makeControl(id, name, schema, required, root);
  const described = [hints.length ? hintId : null, errorId].filter(Boolean).join(" ");
  control.input.setAttribute("aria-describedby", described);
  if (required) control.input.setAttribute("aria-required", "true");
  const element = h("div", { class: "field" }, label, control.element, hint, error);
  return {
    name,
    element,
    read: control.read,
    write: control.write,
    focus: () => control.input.focus(),
    pending: control.pending || (async () => {}),
    invalid(message) {
      error.textContent = message || "";
      if (message) control.input.setAttribute("aria-invalid", "true");
      else control.input.removeAttribute("aria-invalid");
    },
  };
}

function makeControl(id, name, schema, required, root) {
  const missing = () => {
    if (required) throw new FieldError(name, "required");
    return undefined;
  };
  if (schema.enum) {
    const select = h("select", { id, name },
      required && schema.default !== undefined ? null : h("option", { value: "" }, required ? "Choose…" : "—"),
      ...schema.enum.map((v, i) => h("option", { value: String(i) }, String(v))),
    );
    const write = (value) => {
      const at = schema.enum.findIndex((v) => v === value);
      select.value = at < 0 ? "" : String(at);
    };
    if (schema.default !== undefined) write(schema.default);
    return {
      element: select,
      input: select,
      read: () => (select.value === "" ? missing() : schema.enum[Number(select.value)]),
      write,
    };
  }
  if (schema.type === "boolean") {
    const box = h("input", { id, name, type: "checkbox" });
    box.checked = schema.default === true;
    const wrap = h("div", { class: "check" }, box, h("span", { "aria-hidden": "true" }, "on"));
    return { element: wrap, input: box, read: () => box.checked, write: (v) => (box.checked = !!v) };
  }
  if (schema.type === "integer" || schema.type === "number") return numberControl(id, name, schema, missing);
  if (schema.file) return fileControl(id, name, schema, missing);
  if (schema.type === "string") {
    const long = (schema.maxLength || 0) > 200 || /prompt|text|description/i.test(name);
    const input = long
      ? h("textarea", { id, name, rows: 3 })
      : h("input", { id, name, type: "text", autocomplete: "off" });
    if (schema.minLength) input.minLength = schema.minLength;
    if (schema.maxLength) input.maxLength = schema.maxLength;
    if (schema.default !== undefined) input.value = schema.default;
    return {
      element: input,
      input,
      read: () => (input.value === "" ? missing() : input.value),
      write: (v) => (input.value = v),
    };
  }
  const items = schema.type === "array" ? scalarArray(schema, root) : null;
  if (items) {
    const input = h("input", { id, name, type: "text", autocomplete: "off", placeholder: "comma-separated, e.g. " + JSON.stringify(example(schema, root)).slice(1, -1) });
    if (schema.default !== undefined) input.value = schema.default.join(", ");
    const numeric = items.type !== "string";
    return {
      element: input,
      input,
      read() {
        if (input.value.trim() === "") return missing();
        return input.value.split(",").map((part) => {
          const text = part.trim();
          if (!numeric) return text;
          const value = Number(text);
          if (text === "" || Number.isNaN(value)) throw new FieldError(name, `'${text}' is not a number`);
          return value;
        });
      },
      write: (v) => (input.value = Array.isArray(v) ? v.join(", ") : JSON.stringify(v)),
    };
  }
  // Anything else (nested arrays, objects, no type): JSON.
  const area = h("textarea", { id, name, rows: 3, class: "code", spellcheck: "false", placeholder: JSON.stringify(example(schema, root)) });
  if (schema.default !== undefined) area.value = JSON.stringify(schema.default);
  return {
    element: area,
    input: area,
    read() {
      if (area.value.trim() === "") return missing();
      try {
        return JSON.parse(area.value);
      } catch (error) {
        throw new FieldError(name, `not JSON: ${error.message}`);
      }
    },
    write: (v) => (area.value = JSON.stringify(v)),
  };
}

function numberControl(id, name, schema, missing) {
  const integer = schema.type === "integer";
  const input = h("input", { id, name, type: "number", step: integer ? "1" : "any", inputmode: integer ? "numeric" : "decimal" });
  if (schema.minimum !== undefined) input.min = schema.minimum;
  if (schema.maximum !== undefined) input.max = schema.maximum;
  if (schema.default !== undefined) input.value = schema.default;
  let slider = null;
  const low = schema.minimum ?? schema.exclusiveMinimum;
  const high = schema.maximum ?? schema.exclusiveMaximum;
  if (low !== undefined && high !== undefined && high - low <= 10000) {
    // A mouse's shortcut for the number beside it, which keyboards and screen readers use.
    const step = integer ? 1 : (high - low) / 100;
    const min = schema.minimum ?? low + step;
    const max = schema.maximum ?? high - step;
    slider = h("input", { type: "range", min, max, step, tabindex: "-1", "aria-hidden": "true" });
    slider.value = input.value || min;
    slider.addEventListener("input", () => (input.value = slider.value));
    input.addEventListener("input", () => (slider.value = input.value));
  }
  return {
    element: slider ? h("div", { class: "number" }, input, slider) : input,
    input,
    read() {
      if (input.value === "") return missing();
      const value = Number(input.value);
      if (integer && !Number.isInteger(value)) throw new FieldError(name, `${input.value} is not a whole number`);
      return value;
    },
    write(v) {
      input.value = v;
      if (slider) slider.value = v;
    },
  };
}

function fileControl(id, name, schema, missing) {
  const picker = h("input", { id, name, type: "file", accept: /image/i.test(`${name} ${schema.description || ""}`) ? "image/*" : null });
  const url = h("input", { type: "url", placeholder: "or a URL", "aria-label": `${schema.title || name}: a URL instead of a file`, autocomplete: "off" });
  const status = h("p", { class: "upload", "aria-live": "polite" });
  const preview = h("div", { class: "upload-preview" });
  let uploading = null;
  picker.addEventListener("change", () => {
    const file = picker.files[0];
    preview.replaceChildren();
    if (!file) return;
    status.textContent = `Uploading ${file.name} (${size(file.size)})…`;
    if (file.type.startsWith("image/")) preview.append(h("img", { src: URL.createObjectURL(file), alt: `${file.name}, chosen` }));
    uploading = upload(file).then(
      (stored) => {
        url.value = stored.urls.get;
        status.textContent = `Uploaded ${file.name} (${size(file.size)})`;
        return stored;
      },
      (error) => {
        status.textContent = `Upload failed: ${error.message}`;
        throw error;
      },
    );
    uploading.catch(() => {});
  });
  return {
    element: h("div", { class: "file" }, picker, url, status, preview),
    input: picker,
    async pending() {
      if (uploading) await uploading;
    },
    read() {
      if (url.value.trim() === "") {
        if (picker.files.length) throw new FieldError(name, "still uploading; try again in a moment");
        return missing();
      }
      return url.value.trim();
    },
    write: (v) => (url.value = typeof v === "string" ? v : JSON.stringify(v)),
  };
}

// The whole input as one JSON object: for a version whose schema names no fields, or a person
// who would rather type it. The same interface as buildForm's.
export function jsonForm(input) {
  const area = h("textarea", { id: `field-${++counter}`, name: "input", rows: 8, class: "code", spellcheck: "false", "aria-describedby": `field-${counter}-error` });
  area.value = JSON.stringify(input ?? {}, null, 2);
  const error = h("p", { class: "field-error", id: `field-${counter}-error`, role: "alert" });
  const element = h("div", { class: "field" }, h("div", { class: "label" }, h("label", { for: area.id }, "Input (JSON)")), area, error);
  return {
    element,
    ready: async () => {},
    read() {
      error.textContent = "";
      area.removeAttribute("aria-invalid");
      let value;
      try {
        value = JSON.parse(area.value);
      } catch (problem) {
        throw new FieldError("input", `not JSON: ${problem.message}`);
      }
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new FieldError("input", "must be a JSON object");
      return value;
    },
    partial() {
      try {
        return this.read();
      } catch {
        return {};
      }
    },
    fill(value) {
      area.value = JSON.stringify(value, null, 2);
    },
    errors(byField) {
      const messages = Object.entries(byField).map(([name, message]) => (name === "input" ? message : `${name}: ${message}`));
      if (!messages.length) return false;
      error.textContent = messages.join("; ");
      area.setAttribute("aria-invalid", "true");
      area.focus();
      return true;
    },
  };
}
