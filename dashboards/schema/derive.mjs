// Derive the JSON Schemas the dashboard tests validate against from @grafana/schema's TypeScript types.
//
//   cd dashboards/schema && npm ci && node derive.mjs      (or: make dashboard-schema)
//
// Why derived and committed: there is no Grafana server to import into on the development machines,
// and @grafana/schema ships the dashboard model only as TypeScript. ts-json-schema-generator turns the
// types into JSON Schema (draft-07) with additionalProperties: false on every interface, so a typo or a
// key Grafana's current model does not know fails the test. The output is deterministic (keys sorted),
// committed, and records the package versions it came from.
//
// What is converted (all from @grafana/schema, versions in package-lock.json):
//   dashboard.schema.json         the classic (v1) Dashboard type: panels, rows, variables, annotations,
//                                 links, field config, thresholds, mappings, transformations
//   panel-<type>.schema.json      Options and FieldConfig (fieldConfig.defaults.custom) of the panel
//                                 plugins our dashboards use
// Patches (the only hand-written parts, each explained in PATCHES below) are applied after conversion.
// Not covered: query targets (the TS type is Record<string, unknown>; no Prometheus DataQuery type is
// shipped), transformations' options (per-transformer, untyped), the v2 dashboard API.

import { createGenerator } from "ts-json-schema-generator";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const HERE = new URL(".", import.meta.url).pathname;
const TYPES = join(HERE, "node_modules/@grafana/schema/dist/types/raw");
const lock = JSON.parse(readFileSync(join(HERE, "package-lock.json"), "utf8"));
const version = (name) => lock.packages[`node_modules/${name}`].version;
const SOURCE = `@grafana/schema ${version("@grafana/schema")}, ts-json-schema-generator ${version("ts-json-schema-generator")}`;

//: panel plugin id -> folder under raw/composable
const PANELS = { timeseries: "timeseries", stat: "stat", table: "table", "state-timeline": "statetimeline" };

const PATCHES = [
  {
    why: "Datasource-specific annotation fields: the TS AnnotationQuery only models the built-in Grafana " +
      "datasource (its own comment: 'TODO.. this should just be a normal query target'); Grafana stores a " +
      "Prometheus annotation's query in these top-level keys.",
    apply(schema) {
      Object.assign(schema.definitions.AnnotationQuery.properties, {
        expr: { type: "string" }, step: { type: "string" }, titleFormat: { type: "string" },
        textFormat: { type: "string" }, tagKeys: { type: "string" }, useValueForTime: { type: "boolean" },
      });
    },
  },
  {
    why: "The export envelope: __inputs (what Grafana's Import asks for, e.g. the Prometheus datasource) and " +
      "__requires are not part of the stored Dashboard type but are how a dashboard JSON imports anywhere.",
    apply(schema) {
      const str = { type: "string" };
      Object.assign(schema.definitions.Dashboard.properties, {
        __inputs: { type: "array", items: { type: "object", additionalProperties: false,
          required: ["name", "label", "type", "pluginId", "pluginName"],
          properties: { name: str, label: str, description: str, type: { const: "datasource" }, pluginId: str,
                        pluginName: str } } },
        __requires: { type: "array", items: { type: "object", additionalProperties: false,
          required: ["type", "id", "name", "version"],
          properties: { type: { enum: ["grafana", "datasource", "panel"] }, id: str, name: str, version: str } } },
      });
    },
  },
];

function generate(path, type) {
  return createGenerator({ path, type, skipTypeCheck: true, additionalProperties: false, sortProps: true,
                           topRef: true, expose: "export", jsDoc: "extended" }).createSchema(type);
}

function sortKeys(node) {
  if (Array.isArray(node)) return node.map(sortKeys);
  if (node && typeof node === "object") {
    return Object.fromEntries(Object.keys(node).sort().map((key) => [key, sortKeys(node[key])]));
  }
  return node;
}

function write(name, schema) {
  writeFileSync(join(HERE, name), JSON.stringify(sortKeys(schema), null, 2) + "\n");
  console.log(`wrote dashboards/schema/${name}`);
}

const dashboard = generate(join(TYPES, "dashboard/x/types.gen.d.ts"), "Dashboard");
for (const patch of PATCHES) patch.apply(dashboard);
dashboard.$comment = `Derived from ${SOURCE} (type Dashboard, raw/dashboard/x/types.gen.d.ts) by ` +
  `dashboards/schema/derive.mjs. Patches: ${PATCHES.map((p) => p.why).join(" | ")}`;
write("dashboard.schema.json", dashboard);

for (const [plugin, folder] of Object.entries(PANELS)) {
  const path = join(TYPES, `composable/${folder}/panelcfg/x/types.gen.d.ts`);
  const options = generate(path, "Options");
  const fieldConfig = generate(path, "FieldConfig");
  write(`panel-${plugin}.schema.json`, {
    $comment: `Derived from ${SOURCE} (types Options and FieldConfig, raw/composable/${folder}/panelcfg/x/` +
      "types.gen.d.ts) by dashboards/schema/derive.mjs. No patches.",
    options, fieldConfig,
  });
}
