import { describe, expect, it } from "vitest";
import {
  compileTemplate,
  formatValue,
  renderTemplate,
  sprintf,
  STRICT,
  TemplateError,
} from "../../cli/format/template.js";

const inspect = {
  Id: "abc123",
  Name: "/web",
  State: { Status: "exited", ExitCode: 3, Running: false, Pid: 0 },
  Config: {
    Image: "busybox",
    Cmd: ["sh", "-c", "echo hi"],
    Entrypoint: null,
    Labels: { "com.example.role": "db", tier: "back" },
    Env: ["A=1", "B=2"],
  },
  Mounts: [],
  Count: 1000000,
  Ratio: 0.5,
};

describe("template: fields and printing", () => {
  it("prints plain text unchanged", () => {
    expect(renderTemplate("hello", inspect)).toBe("hello");
  });
  it("reads nested fields", () => {
    expect(renderTemplate("{{.State.Status}} {{.State.ExitCode}}", inspect)).toBe("exited 3");
  });
  it("prints the dot", () => {
    expect(renderTemplate("{{.}}", "x")).toBe("x");
  });
  it("prints arrays and maps the way Go prints them", () => {
    expect(renderTemplate("{{.Config.Cmd}}", inspect)).toBe("[sh -c echo hi]");
    expect(renderTemplate("{{.Config.Labels}}", inspect)).toBe("map[com.example.role:db tier:back]");
    expect(renderTemplate("{{.Mounts}}", inspect)).toBe("[]");
  });
  it("prints numbers without exponent for integers", () => {
    expect(renderTemplate("{{.Count}} {{.Ratio}}", inspect)).toBe("1000000 0.5");
  });
  it("prints <no value> for a missing map key and [] for null (docker's nil slices)", () => {
    expect(renderTemplate("{{.Nope}}", inspect)).toBe("<no value>");
    expect(renderTemplate("{{.Config.Entrypoint}}", inspect)).toBe("[]");
  });
  it("fails on a field of nil", () => {
    expect(() => renderTemplate("{{.Health.Status}}", inspect)).toThrow(
      /nil pointer evaluating .Health.Status/,
    );
  });
  it("fails on a field of a string", () => {
    expect(() => renderTemplate("{{.Name.Foo}}", inspect)).toThrow(/can't evaluate field Foo in type string/);
  });
  it("fails on unknown fields of strict contexts", () => {
    const ctx = { [STRICT]: "ContainerContext", ID: "x" };
    expect(renderTemplate("{{.ID}}", ctx)).toBe("x");
    expect(() => renderTemplate("{{.Nope}}", ctx)).toThrow(
      /can't evaluate field Nope in type ContainerContext/,
    );
  });
  it("calls method fields with arguments", () => {
    const ctx = { [STRICT]: "C", Label: (k: unknown) => ({ a: "1" })[String(k)] ?? "" };
    expect(renderTemplate('{{.Label "a"}}|{{.Label "b"}}', ctx)).toBe("1|");
  });
  it("rejects arguments to non-functions", () => {
    expect(() => renderTemplate('{{.Name "x"}}', inspect)).toThrow(TemplateError);
    expect(() => renderTemplate('{{"a" "b"}}', inspect)).toThrow(/can't give argument to non-function/);
  });
});

describe("template: functions", () => {
  it("json", () => {
    expect(renderTemplate("{{json .State}}", inspect)).toBe(
      '{"Status":"exited","ExitCode":3,"Running":false,"Pid":0}',
    );
    expect(renderTemplate("{{json .Config.Entrypoint}}", inspect)).toBe("null");
    expect(renderTemplate("{{json .Config.Cmd}}", inspect)).toBe('["sh","-c","echo hi"]');
    expect(renderTemplate("{{.State | json}}", inspect)).toBe(renderTemplate("{{json .State}}", inspect));
  });
  it("json does not escape HTML characters, except in docker's row contexts", () => {
    expect(renderTemplate("{{json .}}", { a: "<&>" })).toBe('{"a":"<&>"}');
    expect(renderTemplate("{{json .}}", { [STRICT]: "C", a: "<none>&" })).toBe(
      '{"a":"\\u003cnone\\u003e\\u0026"}',
    );
  });
  it("index on maps, arrays and nested", () => {
    expect(renderTemplate('{{index .Config.Labels "com.example.role"}}', inspect)).toBe("db");
    expect(renderTemplate('{{index .Config.Labels "missing"}}', inspect)).toBe("");
    expect(renderTemplate("{{index .Config.Cmd 1}}", inspect)).toBe("-c");
    expect(renderTemplate('{{index . "Config" "Labels" "tier"}}', inspect)).toBe("back");
    expect(() => renderTemplate("{{index .Config.Cmd 9}}", inspect)).toThrow(/out of range/);
  });
  it("field chains on parenthesised pipelines", () => {
    expect(renderTemplate("{{(index .Items 1).Name}}", { Items: [{ Name: "a" }, { Name: "b" }] })).toBe("b");
  });
  it("join, split, lower, upper, title, pad, truncate", () => {
    expect(renderTemplate('{{join .Config.Env ","}}', inspect)).toBe("A=1,B=2");
    expect(renderTemplate('{{split "a:b:c" ":"}}', inspect)).toBe("[a b c]");
    expect(renderTemplate('{{lower "AbC"}} {{upper "AbC"}} {{title "hello world"}}', inspect)).toBe(
      "abc ABC Hello World",
    );
    expect(renderTemplate('[{{pad "x" 2 1}}]', inspect)).toBe("[  x ]");
    expect(renderTemplate('{{truncate "abcdef" 3}}', inspect)).toBe("abc");
  });
  it("len", () => {
    expect(renderTemplate("{{len .Config.Cmd}} {{len .Config.Labels}} {{len .Name}}", inspect)).toBe("3 2 4");
  });
  it("print, println, printf", () => {
    expect(renderTemplate('{{print "a" "b" 1 2}}', {})).toBe("ab1 2");
    expect(renderTemplate('{{println "a" 1}}', {})).toBe("a 1\n");
    expect(
      renderTemplate('{{printf "%s=%d %q %v %5s|%-4s|%03d %.2f %%" "k" 7 "q" true "r" "l" 5 3.14159}}', {}),
    ).toBe('k=7 "q" true     r|l   |005 3.14 %');
  });
  it("sprintf reports missing and extra operands like Go", () => {
    expect(sprintf("%s %s", ["a"])).toBe("a %!s(MISSING)");
    expect(sprintf("%s", ["a", 1])).toBe("a%!(EXTRA int=1)");
  });
  it("comparisons and logic", () => {
    expect(
      renderTemplate('{{eq .State.Status "exited"}} {{ne .State.ExitCode 0}} {{lt 1 2}} {{ge 2 3}}', inspect),
    ).toBe("true true true false");
    expect(renderTemplate('{{eq .State.Status "running" "exited"}}', inspect)).toBe("true");
    expect(renderTemplate('{{and 1 0}} {{or 0 "" "x"}} {{not .State.Running}}', inspect)).toBe("0 x true");
  });
  it("unknown functions fail at execution", () => {
    expect(() => renderTemplate("{{nope .}}", {})).toThrow(/function "nope" not defined/);
  });
});

describe("template: control structures", () => {
  it("if / else if / else", () => {
    const t = compileTemplate('{{if eq .S "a"}}A{{else if eq .S "b"}}B{{else}}other{{end}}');
    expect(t.execute({ S: "a" })).toBe("A");
    expect(t.execute({ S: "b" })).toBe("B");
    expect(t.execute({ S: "c" })).toBe("other");
  });
  it("Go truthiness", () => {
    const t = compileTemplate("{{if .}}yes{{else}}no{{end}}");
    expect([0, "", null, [], {}, false, 1, "x", [1], { a: 1 }, true].map((v) => t.execute(v)).join(",")).toBe(
      "no,no,no,no,no,no,yes,yes,yes,yes,yes",
    );
  });
  it("range over arrays with dot, variables and else", () => {
    expect(renderTemplate("{{range .Config.Env}}[{{.}}]{{end}}", inspect)).toBe("[A=1][B=2]");
    expect(renderTemplate("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", inspect)).toBe(
      "0:A=1 1:B=2 ",
    );
    expect(renderTemplate("{{range .Mounts}}x{{else}}none{{end}}", inspect)).toBe("none");
  });
  it("range over maps in key order", () => {
    expect(renderTemplate("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", inspect)).toBe(
      "com.example.role=db;tier=back;",
    );
  });
  it("range with break and continue", () => {
    expect(
      renderTemplate(
        "{{range .}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}",
        [1, 2, 3, 4, 5],
      ),
    ).toBe("13");
  });
  it("with sets the dot and skips empty values", () => {
    expect(renderTemplate("{{with .State}}{{.Status}}{{end}}", inspect)).toBe("exited");
    expect(renderTemplate("{{with .Nope}}x{{else}}empty{{end}}", inspect)).toBe("empty");
  });
  it("variables: $ is the root, declarations and assignment", () => {
    expect(renderTemplate("{{range .Config.Cmd}}{{$.Name}}{{end}}", inspect)).toBe("/web/web/web");
    expect(renderTemplate('{{$x := .State.Status}}{{$x}}{{$x = "y"}}{{$x}}', inspect)).toBe("exitedy");
    expect(() => renderTemplate("{{$nope}}", inspect)).toThrow(/undefined variable/);
  });
  it("variables declared in a block end with it", () => {
    expect(() => renderTemplate("{{if true}}{{$v := 1}}{{end}}{{$v}}", {})).toThrow(/undefined variable/);
  });
  it("trim markers", () => {
    expect(renderTemplate("a  {{- .X -}}  \n b", { X: 1 })).toBe("a1b");
    expect(renderTemplate("{{-3}}", {})).toBe("-3");
  });
  it("comments", () => {
    expect(renderTemplate("a{{/* note */}}b", {})).toBe("ab");
  });
  it("string literals with escapes and raw strings", () => {
    expect(renderTemplate('{{"a\\tb\\n\\"c\\""}}', {})).toBe('a\tb\n"c"');
    expect(renderTemplate("{{`raw\\n`}}", {})).toBe("raw\\n");
    expect(renderTemplate('{{"}}"}}', {})).toBe("}}");
  });
});

describe("template: parse errors", () => {
  it.each([
    ["{{.Name", /unclosed action/],
    ["{{if .X}}", /missing \{\{end\}\}/],
    ["{{end}}", /unexpected \{\{end\}\}/],
    ["{{else}}", /unexpected \{\{else\}\}/],
    ["{{if .X}}{{else}}{{else}}{{end}}", /more than one/],
    ["{{.X | }}", /missing command/],
    ['{{template "x"}}', /not supported/],
    ["{{break}}", /outside/],
    ['{{"abc}}', /unclosed action|unterminated/],
  ])("%s", (src, re) => {
    expect(() => compileTemplate(src)).toThrow(re);
  });
  it("errors are prefixed like Go's", () => {
    expect(() => compileTemplate("{{if}}")).toThrow(/^template parsing error: template: /);
  });
});

describe("formatValue", () => {
  it("nested collections", () => {
    expect(formatValue([{ a: [1, 2] }, "s"])).toBe("[map[a:[1 2]] s]");
  });
});
