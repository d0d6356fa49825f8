/*
 * The console's script editor: CodeMirror 5 (vendor/codemirror/) set up for scenario scripts, with
 * completion for seedbed.sdk from sdk-completions.json (written by tools/sdk_completions.py).
 *
 * Load after vendor/codemirror/codemirror.js, mode/python/python.js, addon/hint/show-hint.js,
 * addon/edit/matchbrackets.js, addon/edit/closebrackets.js and addon/selection/active-line.js
 * (addon/display/placeholder.js if a placeholder is wanted), with codemirror.css and
 * addon/hint/show-hint.css.
 *
 *   var editor = SeedbedEditor.create(textareaOrElement, {
 *     value: "…", readOnly: false, completions: json, onChange: function (text) {…},
 *     label: "Scenario script",            // the accessible name of the editing field
 *     placeholder: "…",                    // optional
 *   });
 *   editor.getValue(); editor.setValue(text); editor.focus(); editor.cm  // the CodeMirror
 *   editor.markErrorLine(12, "NameError: name 'db' is not defined"); editor.clearErrors();
 *   SeedbedEditor.infer(text)  // {name: SDK class}: what completion believes each name holds
 *
 * Completion (Ctrl-Space, and by itself after "."): after `name.` the members of the SDK class that
 * `name` holds, followed through simple assignments in the text (`dm = Seedbed()`,
 * `db = dm.connection("x")`, `from seedbed.sdk import params`, `import seedbed.sdk as sdk`); when
 * the class is not known, every SDK member. Elsewhere: the SDK's names, the names the script
 * defines, Python's keywords and common builtins. Each suggestion shows its signature and the first
 * line of its doc. The reading of the script is textual on purpose: a Python parser in the page
 * would weigh more than the editor, and a wrong guess costs only a list of suggestions.
 *
 * onChange(text) is called for edits made in the editor, not for setValue.
 * Keyboard: Tab indents (four spaces), Shift-Tab dedents; Escape then Tab leaves the editor.
 *
 * Styles: the console's Content-Security-Policy admits only its own stylesheets, so the few rules
 * the editor needs go into a constructed stylesheet (CSSOM, which the policy allows). Their classes
 * start with sb-editor-; the page's stylesheet may restyle them.
 */
(function () {
  "use strict";

  var KEYWORDS = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
    "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
  ];
  var BUILTINS = [
    "Exception", "KeyError", "ValueError", "abs", "all", "any", "bool", "dict", "enumerate", "filter",
    "float", "int", "isinstance", "len", "list", "map", "max", "min", "next", "open", "print", "range",
    "repr", "reversed", "round", "set", "sorted", "str", "sum", "tuple", "zip",
  ];
  var ERROR_GUTTER = "sb-editor-errors";
  var STYLES = [
    ".sb-editor-error-line { background: #fde8e6; }",
    "." + ERROR_GUTTER + " { width: 14px; }",
    ".sb-editor-error-marker { color: #b3261e; font-weight: bold; padding-left: 3px; cursor: default; }",
    ".sb-editor-error-message { background: #fde8e6; color: #8c1d18; padding: 1px 8px 3px;" +
      " font: 12px/1.4 system-ui, sans-serif; white-space: pre-wrap; }",
    ".CodeMirror-hints { max-width: min(80ch, 90vw); }",
    ".CodeMirror-hint { overflow: hidden; text-overflow: ellipsis; }",
    ".sb-editor-hint-name { font-weight: 600; }",
    ".sb-editor-hint-detail { opacity: .7; }",
    ".sb-editor-hint-doc { display: block; max-width: 70ch; overflow: hidden; text-overflow: ellipsis;" +
      " font: 11px/1.35 system-ui, sans-serif; opacity: .75; }",
    ".sb-editor-sr { position: absolute; width: 1px; height: 1px; overflow: hidden;" +
      " clip: rect(0 0 0 0); white-space: nowrap; }",
  ].join("\n");
  var ids = 0;
  var lastCompletions = null; // what infer() uses when not given completions

  // -- reading Python text ------------------------------------------------------------------------

  /** The index just past the string literal that starts at i (a quote), triple quotes included. */
  function skipString(text, i) {
    var quote = text.charAt(i);
    var triple = text.substr(i, 3) === quote + quote + quote;
    var j = i + (triple ? 3 : 1);
    while (j < text.length) {
      var c = text.charAt(j);
      if (c === "\\") { j += 2; continue; }
      if (triple) {
        if (text.substr(j, 3) === quote + quote + quote) return j + 3;
      } else if (c === quote || c === "\n") {
        return j + 1;
      }
      j++;
    }
    return text.length;
  }

  /** The index of the bracket closing the one at i, or -1; strings and comments are skipped. */
  function matchForward(text, i) {
    var depth = 0;
    for (var j = i; j < text.length; j++) {
      var c = text.charAt(j);
      if (c === "'" || c === '"') { j = skipString(text, j) - 1; continue; }
      if (c === "#") { j = text.indexOf("\n", j); if (j < 0) return -1; continue; }
      if (c === "(" || c === "[" || c === "{") depth++;
      else if (c === ")" || c === "]" || c === "}") { depth--; if (depth === 0) return j; }
    }
    return -1;
  }

  /** Where each logical line starts: not inside brackets, a string or a backslash continuation. */
  function statementStarts(text) {
    var starts = [0];
    var depth = 0;
    for (var j = 0; j < text.length; j++) {
      var c = text.charAt(j);
      if (c === "'" || c === '"') { j = skipString(text, j) - 1; continue; }
      if (c === "#") { var end = text.indexOf("\n", j); j = (end < 0 ? text.length : end) - 1; continue; }
      if (c === "\\" && text.charAt(j + 1) === "\n") { j++; continue; }
      if (c === "(" || c === "[" || c === "{") depth++;
      else if (c === ")" || c === "]" || c === "}") depth = Math.max(0, depth - 1);
      else if (c === "\n" && depth === 0) starts.push(j + 1);
    }
    return starts;
  }

  function isIdentStart(c) { return /[A-Za-z_]/.test(c); }

  function identAt(text, i) {
    var m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 200));
    return m ? m[0] : "";
  }

  function skipBlanks(text, i) {
    while (i < text.length && (text.charAt(i) === " " || text.charAt(i) === "\t")) i++;
    return i;
  }

  // -- what names hold ----------------------------------------------------------------------------
  // A value is null (unknown), {kind: "module"} (seedbed.sdk), {kind: "package"} (seedbed),
  // {kind: "instance", cls: "Seedbed"}, or {kind: "entry", entry: …} (a class, function or method
  // of the completion data, not yet called).

  function instance(cls) { return cls ? { kind: "instance", cls: cls } : null; }

  function fromEntry(entry) {
    if (!entry) return null;
    if (entry.signature !== undefined) return { kind: "entry", entry: entry };
    return instance(entry["class"]);
  }

  function membersOf(data, cls) {
    var described = data && data.classes && data.classes[cls];
    return described ? described.members || {} : null;
  }

  function attribute(value, name, data) {
    if (!value || !data) return null;
    if (value.kind === "package") return name === "sdk" ? { kind: "module" } : null;
    if (value.kind === "module") return fromEntry((data.exports || {})[name]);
    var cls = value.kind === "instance" ? value.cls : value.entry.kind === "class" ? value.entry.returns : null;
    var members = cls ? membersOf(data, cls) : null;
    return members ? fromEntry(members[name]) : null;
  }

  function lookup(name, env, data) {
    if (Object.prototype.hasOwnProperty.call(env, name)) return env[name];
    // Not imported (yet): an SDK name still reads as itself.
    var exports = (data && data.exports) || {};
    return Object.prototype.hasOwnProperty.call(exports, name) ? fromEntry(exports[name]) : null;
  }

  /** Follow `name(.attr | (…) | […])*` from text[i]: {value, end}. */
  function evalChain(text, i, env, data) {
    i = skipBlanks(text, i);
    var name = identAt(text, i);
    if (!name) return { value: null, end: i };
    var value = lookup(name, env, data);
    i += name.length;
    for (;;) {
      var j = skipBlanks(text, i);
      var c = text.charAt(j);
      if (c === ".") {
        var k = skipBlanks(text, j + 1);
        var attr = identAt(text, k);
        if (!attr) break;
        value = attribute(value, attr, data);
        i = k + attr.length;
      } else if (c === "(" || c === "[") {
        var close = matchForward(text, j);
        if (close < 0) return { value: null, end: text.length };
        value = c === "(" && value && value.kind === "entry" ? instance(value.entry.returns) : null;
        i = close + 1;
      } else {
        break;
      }
    }
    return { value: value, end: i };
  }

  function splitNames(list) {
    return list.replace(/[()\\]/g, " ").split(",").map(function (part) {
      var words = part.replace(/#.*$/gm, "").trim().split(/\s+/);
      return words[0] ? { name: words[0], as: words[2] && words[1] === "as" ? words[2] : words[0] } : null;
    }).filter(Boolean);
  }

  /** The script's names: {env: {name: value}, defined: [name…]}, read statement by statement. */
  function bindings(text, data) {
    var env = {};
    var defined = {};
    var exports = (data && data.exports) || {};
    function define(name, value) {
      defined[name] = true;
      env[name] = value === undefined ? null : value;
    }
    statementStarts(text).forEach(function (start) {
      var end = text.indexOf("\n", start);
      var line = text.slice(start, end < 0 ? text.length : end);
      var m;
      if ((m = /^\s*from\s+seedbed\.sdk\s+import\s+/.exec(line))) {
        var from = start + m[0].length;
        var names = text.charAt(from) === "(" ? text.slice(from, matchForward(text, from) + 1) : line.slice(m[0].length);
        splitNames(names).forEach(function (n) {
          if (n.name === "*") Object.keys(exports).forEach(function (e) { define(e, fromEntry(exports[e])); });
          else define(n.as, fromEntry(exports[n.name]));
        });
      } else if ((m = /^\s*from\s+seedbed\s+import\s+(.*)$/.exec(line))) {
        splitNames(m[1]).forEach(function (n) { define(n.as, n.name === "sdk" ? { kind: "module" } : null); });
      } else if ((m = /^\s*from\s+\S+\s+import\s+(.*)$/.exec(line))) {
        splitNames(m[1]).forEach(function (n) { define(n.as); });
      } else if ((m = /^\s*import\s+(.*)$/.exec(line))) {
        splitNames(m[1]).forEach(function (n) {
          if (n.name === "seedbed.sdk" && n.as !== n.name) define(n.as, { kind: "module" });
          else if (n.name === "seedbed" || n.name === "seedbed.sdk") define("seedbed", { kind: "package" });
          else define(n.as === n.name ? n.name.split(".")[0] : n.as);
        });
      } else if ((m = /^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)/.exec(line))) {
        define(m[1]);
      } else if ((m = /^\s*(?:async\s+)?for\s+(.+?)\s+in\b/.exec(line))) {
        m[1].replace(/[()]/g, "").split(",").forEach(function (t) { if (identAt(t.trim(), 0)) define(t.trim()); });
      } else if ((m = /^\s*([A-Za-z_]\w*)\s*(?::\s*([^=]+?)\s*)?=(?!=)/.exec(line))) {
        var annotation = m[2] ? m[2].trim() : "";
        var result = evalChain(text, start + m[0].length, env, data);
        // Only a whole right-hand side says what the name holds (not `x = dm.generate(…) or []`).
        var restEnd = text.indexOf("\n", result.end);
        var rest = text.slice(result.end, restEnd < 0 ? text.length : restEnd).replace(/#.*$/, "").trim();
        var value = rest === "" || rest === ";" ? result.value : null;
        if (data && data.classes && Object.prototype.hasOwnProperty.call(data.classes, annotation)) {
          value = instance(annotation);
        }
        define(m[1], value);
      } else if ((m = /^\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+)\s*=(?!=)/.exec(line))) {
        m[1].split(",").forEach(function (t) { define(t.trim()); });
      }
      var withAs = /\bas\s+([A-Za-z_]\w*)\s*:?\s*$/.exec(line.replace(/#.*$/, ""));
      if (withAs && /^\s*(?:async\s+)?(?:with|except)\b/.test(line)) define(withAs[1]);
    });
    return { env: env, defined: Object.keys(defined) };
  }

  /** {name: SDK class} for the names of `text` whose class is known. */
  function infer(text, completions) {
    var data = completions || lastCompletions;
    var env = bindings(String(text || ""), data).env;
    var out = {};
    Object.keys(env).forEach(function (name) {
      var value = env[name];
      if (value && value.kind === "instance") out[name] = value.cls;
    });
    return out;
  }

  // -- suggestions --------------------------------------------------------------------------------

  /** Tokens of one line's text: names, numbers, strings, brackets, dots and the rest. */
  function tokens(text) {
    var out = [];
    for (var i = 0; i < text.length;) {
      var c = text.charAt(i);
      var start = i;
      if (c === "'" || c === '"') { i = skipString(text, i); out.push({ t: "str", start: start }); continue; }
      if (c === "#") break;
      if (isIdentStart(c)) { i += identAt(text, i).length; out.push({ t: "name", start: start }); continue; }
      if (/[0-9]/.test(c)) { while (i < text.length && /[\w.]/.test(text.charAt(i))) i++; out.push({ t: "num", start: start }); continue; }
      i++;
      if (c !== " " && c !== "\t") out.push({ t: "()[].".indexOf(c) >= 0 ? c : "op", start: start });
    }
    return out;
  }

  /** The expression before the "." that ends `before` (`dm.connection("x")`), or null. */
  function chainBeforeDot(before) {
    var list = tokens(before);
    var k = list.length - 1;
    if (k < 0 || list[k].t !== "." || list[k].start !== before.length - 1) return null;
    var start = -1;
    k--;
    while (k >= 0) {
      var t = list[k].t;
      if (t === ")" || t === "]") {
        var depth = 0;
        for (; k >= 0; k--) {
          if (list[k].t === ")" || list[k].t === "]") depth++;
          else if ((list[k].t === "(" || list[k].t === "[") && --depth === 0) break;
        }
        if (k < 0) return null;
        start = list[k].start;
        k--;
        if (k >= 0 && (list[k].t === "name" || list[k].t === ")" || list[k].t === "]")) continue;
        break;
      }
      if (t !== "name") break;
      start = list[k].start;
      k--;
      if (k >= 0 && list[k].t === ".") { k--; continue; }
      break;
    }
    return start < 0 ? null : before.slice(start, before.length - 1);
  }

  function suggestion(name, entry, owner) {
    var detail = "";
    if (entry && entry.signature !== undefined) detail = entry.signature;
    else if (entry && entry.type) detail = ": " + entry.type;
    var doc = (entry && entry.doc) || "";
    if (owner) doc = owner + (doc ? " · " + doc : "");
    return { text: name, displayText: name + detail, detail: detail, doc: doc, render: renderSuggestion };
  }

  function renderSuggestion(element, _self, data) {
    var name = document.createElement("span");
    name.className = "sb-editor-hint-name";
    name.textContent = data.text;
    element.appendChild(name);
    if (data.detail) {
      var detail = document.createElement("span");
      detail.className = "sb-editor-hint-detail";
      detail.textContent = data.detail;
      element.appendChild(detail);
    }
    if (data.doc) {
      var doc = document.createElement("span");
      doc.className = "sb-editor-hint-doc";
      doc.textContent = data.doc;
      element.appendChild(doc);
      element.title = data.doc;
    }
  }

  function sortedKeys(object) { return Object.keys(object || {}).sort(); }

  function memberSuggestions(value, data) {
    if (value && value.kind === "module") {
      return sortedKeys(data.exports).map(function (name) { return suggestion(name, data.exports[name]); });
    }
    var cls = value && (value.kind === "instance" ? value.cls : value.kind === "entry" && value.entry.kind === "class" ? value.entry.returns : null);
    var members = cls ? membersOf(data, cls) : null;
    if (members) return sortedKeys(members).map(function (name) { return suggestion(name, members[name]); });
    if (value) return []; // known, and not the SDK's: no guess
    // Unknown: every SDK member, once per name and signature, saying whose it is.
    var seen = {};
    var out = [];
    sortedKeys(data.classes).forEach(function (owner) {
      var all = data.classes[owner].members || {};
      Object.keys(all).forEach(function (name) {
        var key = name + " " + (all[name].signature || all[name].type || "");
        if (seen[key]) return;
        seen[key] = true;
        out.push(suggestion(name, all[name], owner));
      });
    });
    return out.sort(function (a, b) { return a.text < b.text ? -1 : a.text > b.text ? 1 : 0; });
  }

  function nameSuggestions(text, data) {
    var read = bindings(text, data);
    var seen = {};
    var out = [];
    function add(item) { if (!seen[item.text]) { seen[item.text] = true; out.push(item); } }
    read.defined.slice().sort().forEach(function (name) {
      var value = read.env[name];
      var cls = value && value.kind === "instance" ? value.cls : "";
      add(suggestion(name, value && value.kind === "entry" ? value.entry : cls ? { type: cls } : null));
    });
    sortedKeys(data.exports).forEach(function (name) { add(suggestion(name, data.exports[name], "seedbed.sdk")); });
    BUILTINS.forEach(function (name) { add(suggestion(name, null, "builtin")); });
    KEYWORDS.forEach(function (name) { add(suggestion(name, null, "keyword")); });
    return out;
  }

  function hintsAt(cm, completions, automatic) {
    var cursor = cm.getCursor();
    var token = cm.getTokenAt(cursor);
    if (token.type && /string|comment/.test(token.type)) return null;
    var line = cm.getLine(cursor.line);
    var before = line.slice(0, cursor.ch);
    var prefix = /[A-Za-z_][A-Za-z0-9_]*$/.exec(before);
    prefix = prefix ? prefix[0] : "";
    var from = cursor.ch - prefix.length;
    var to = cursor.ch;
    while (to < line.length && /\w/.test(line.charAt(to))) to++;
    var data = completions || { exports: {}, classes: {} };
    var list;
    if (line.charAt(from - 1) === ".") {
      var expression = chainBeforeDot(line.slice(0, from));
      if (expression === null) return null;
      var env = bindings(cm.getValue(), data).env;
      list = memberSuggestions(evalChain(expression, 0, env, data).value, data);
    } else {
      if (automatic && !prefix) return null;
      list = nameSuggestions(cm.getValue(), data);
    }
    var lower = prefix.toLowerCase();
    list = list.filter(function (item) { return item.text.toLowerCase().indexOf(lower) === 0; });
    // The exact-case matches first, in their order; then the others.
    list = list.filter(function (item) { return item.text.indexOf(prefix) === 0; })
      .concat(list.filter(function (item) { return item.text.indexOf(prefix) !== 0; }));
    if (!list.length) return null;
    return { list: list, from: CodeMirror.Pos(cursor.line, from), to: CodeMirror.Pos(cursor.line, to) };
  }

  function showHints(cm, completions, automatic) {
    if (cm.getOption("readOnly")) return;
    cm.showHint({
      hint: function (editor) { return hintsAt(editor, completions, automatic); },
      completeSingle: false,
      closeCharacters: /[\s()\[\]{};:>,=+\-*\/%"'#]/,
    });
  }

  // -- the editor ---------------------------------------------------------------------------------

  function installStyles(doc) {
    if (doc.__sbEditorStyles) return;
    doc.__sbEditorStyles = true;
    try {
      var sheet = new doc.defaultView.CSSStyleSheet();
      sheet.replaceSync(STYLES);
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.concat([sheet]);
    } catch (_unsupported) {
      // An older browser: the editor works, only its error and hint details look plain.
    }
  }

  function create(target, options) {
    options = options || {};
    if (!window.CodeMirror) throw new Error("SeedbedEditor needs CodeMirror: load vendor/codemirror/codemirror.js first");
    if (!target || !target.nodeType) throw new Error("SeedbedEditor.create needs a textarea or an element");
    var doc = target.ownerDocument || document;
    installStyles(doc);
    var completions = options.completions || null;
    if (completions) lastCompletions = completions;
    var label = options.label || target.getAttribute("aria-label") || "Python script";
    var leaving = false; // Escape was pressed: the next Tab leaves the editor
    var config = {
      mode: { name: "python", version: 3, singleLineStringErrors: false },
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      matchBrackets: true,
      autoCloseBrackets: true,
      styleActiveLine: true,
      readOnly: !!options.readOnly,
      gutters: ["CodeMirror-linenumbers", ERROR_GUTTER],
      screenReaderLabel: label,
      inputStyle: "contenteditable", // read by screen readers as text, unlike the hidden textarea
      extraKeys: {
        "Ctrl-Space": function (cm) { showHints(cm, completions, false); },
        Tab: function (cm) {
          if (cm.somethingSelected()) cm.indentSelection("add");
          else cm.replaceSelection(Array(cm.getOption("indentUnit") + 1).join(" "), "end", "+input");
        },
        "Shift-Tab": function (cm) { cm.indentSelection("subtract"); },
        Esc: function () { leaving = true; return CodeMirror.Pass; },
      },
    };
    if (options.placeholder) config.placeholder = options.placeholder;
    var cm;
    if (target.tagName === "TEXTAREA") {
      if (options.value !== undefined && options.value !== null) target.value = String(options.value);
      cm = CodeMirror.fromTextArea(target, config);
    } else {
      config.value = options.value === undefined || options.value === null ? "" : String(options.value);
      cm = CodeMirror(target, config);
    }
    var input = cm.getInputField();
    input.setAttribute("aria-label", label);
    input.setAttribute("aria-multiline", "true");
    if (input.tagName !== "TEXTAREA") input.setAttribute("role", "textbox");
    if (options.readOnly) input.setAttribute("aria-readonly", "true");
    var help = doc.createElement("span");
    help.id = "sb-editor-help-" + ++ids;
    help.className = "sb-editor-sr";
    help.textContent = "Python. Ctrl+Space suggests names. Escape then Tab leaves the editor.";
    cm.getWrapperElement().appendChild(help);
    input.setAttribute("aria-describedby", help.id);

    cm.on("keydown", function (_cm, event) {
      // After Escape, Tab is the browser's again (CodeMirror leaves an event so marked alone).
      if (event.key === "Tab" && leaving) event.codemirrorIgnore = true;
      else if (event.key !== "Escape" && event.key !== "Shift") leaving = false;
    });
    cm.on("focus", function () { leaving = false; });
    cm.on("inputRead", function (editor, change) {
      if (change.origin === "+input" && change.text.length === 1 && change.text[0] === ".") {
        showHints(editor, completions, true);
      }
    });
    cm.on("changes", function (editor, changes) {
      if (target.tagName === "TEXTAREA") editor.save();
      var edited = changes.some(function (change) { return change.origin !== "setValue"; });
      if (edited && typeof options.onChange === "function") options.onChange(editor.getValue());
    });

    var errors = [];
    function clearErrors() {
      cm.operation(function () {
        errors.forEach(function (mark) {
          cm.removeLineClass(mark.line, "background", "sb-editor-error-line");
          cm.setGutterMarker(mark.line, ERROR_GUTTER, null);
          if (mark.widget) mark.widget.clear();
        });
      });
      errors = [];
    }
    function markErrorLine(lineNumber, message) {
      var n = Math.floor(Number(lineNumber));
      n = Math.min(Math.max(isFinite(n) ? n : 1, 1), cm.lineCount()) - 1;
      var text = message === undefined || message === null ? "" : String(message);
      cm.operation(function () {
        var line = cm.addLineClass(n, "background", "sb-editor-error-line");
        var marker = doc.createElement("span");
        marker.className = "sb-editor-error-marker";
        marker.textContent = "●";
        marker.title = text || "Error";
        marker.setAttribute("role", "img");
        marker.setAttribute("aria-label", "Error on line " + (n + 1) + (text ? ": " + text : ""));
        cm.setGutterMarker(line, ERROR_GUTTER, marker);
        var widget = null;
        if (text) {
          var box = doc.createElement("div");
          box.className = "sb-editor-error-message";
          box.textContent = text;
          widget = cm.addLineWidget(line, box, { coverGutter: false, noHScroll: true });
        }
        errors.push({ line: line, widget: widget });
      });
      var margin = cm.defaultTextHeight() * 3;
      cm.scrollIntoView({ from: CodeMirror.Pos(n, 0), to: CodeMirror.Pos(Math.min(n + 1, cm.lineCount() - 1), 0) }, margin);
    }

    return {
      cm: cm,
      getValue: function () { return cm.getValue(); },
      setValue: function (text) {
        clearErrors();
        cm.setValue(text === undefined || text === null ? "" : String(text));
      },
      markErrorLine: markErrorLine,
      clearErrors: clearErrors,
      focus: function () { cm.focus(); },
    };
  }

  window.SeedbedEditor = { create: create, infer: infer };
})();
