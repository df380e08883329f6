// The same call as curl, Python and JavaScript, to copy. The key is never written into them:
// they read FORETELL_API_KEY from the environment.

function shellQuote(text) {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

function indent(text, spaces) {
  return text.split("\n").join(`\n${" ".repeat(spaces)}`);
}

function pythonLiteral(value) {
  // JSON is Python but for its three words.
  return JSON.stringify(value, null, 4)
    .replace(/(?<=[\s[:,])true(?=[\s\],}]|$)/g, "True")
    .replace(/(?<=[\s[:,])false(?=[\s\],}]|$)/g, "False")
    .replace(/(?<=[\s[:,])null(?=[\s\],}]|$)/g, "None");
}

export function snippets(origin, model, input, streaming) {
  const url = `${origin}/v1/predictions`;
  const body = streaming ? { model, input, stream: true } : { model, input };
  const curl = [
    `curl -s${streaming ? "N" : ""} ${url} \\`,
    `  -H "Authorization: Bearer $FORETELL_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    streaming ? null : `  -H "Prefer: wait=60" \\`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ]
    .filter(Boolean)
    .join("\n");
  const python = streaming
    ? `import json
import os

import httpx

headers = {"Authorization": f"Bearer {os.environ['FORETELL_API_KEY']}"}
body = ${indent(pythonLiteral(body), 0)}
with httpx.stream("POST", "${url}", json=body, headers=headers, timeout=None) as response:
    response.raise_for_status()
    event = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "output":
            print(line[6:], end="", flush=True)
print()`
    : `import os

import httpx

response = httpx.post(
    "${url}",
    headers={
        "Authorization": f"Bearer {os.environ['FORETELL_API_KEY']}",
        "Prefer": "wait=60",
    },
    json=${indent(pythonLiteral(body), 4)},
    timeout=70,
)
response.raise_for_status()
prediction = response.json()
print(prediction["status"], prediction["output"])`;
  const javascript = streaming
    ? `const response = await fetch("${url}", {
  method: "POST",
  headers: {
    Authorization: \`Bearer \${process.env.FORETELL_API_KEY}\`,
    "Content-Type": "application/json",
  },
  body: JSON.stringify(${indent(JSON.stringify(body, null, 2), 2)}),
});
// Server-Sent Events: "event: output" lines carry the new text.
const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  process.stdout.write(value);
}`
    : `const response = await fetch("${url}", {
  method: "POST",
  headers: {
    Authorization: \`Bearer \${process.env.FORETELL_API_KEY}\`,
    "Content-Type": "application/json",
    Prefer: "wait=60",
  },
  body: JSON.stringify(${indent(JSON.stringify(body, null, 2), 2)}),
});
const prediction = await response.json();
console.log(prediction.status, prediction.output);`;
  return [
    { name: "curl", code: curl },
    { name: "Python", code: python },
    { name: "JavaScript", code: javascript },
  ];
}
