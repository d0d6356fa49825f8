/* Seedbed console: plain JavaScript over the REST API (/v1/...), signed in with a session cookie.
 *
 * Rules this file keeps:
 * - Text from the coordinator (log lines, errors, names, rows) only ever reaches the page through
 *   textContent (the `h` helper), never as HTML; ANSI escape sequences are removed and other
 *   control characters shown as visible symbols (`printable`).
 * - Every change sends the session's CSRF token (X-CSRF-Token); the server checks the roles anyway,
 *   and the page hides what the user's role may not do.
 * - A run's log is windowed: only the lines in view are in the document, so a huge log stays fast.
 */
(function () {
  "use strict";

  var state = { me: null, csrf: "", cleanup: [], editorAssets: null, logView: null, view: 0 };
  var main = document.getElementById("main");
  var ROW = 18; // px, the height of one log line (app.css --row)
  var MAX_LOG_LINES = 900000; // kept in the page (below browsers' tallest element); older ones are dropped, and said so
  var MAX_LINE_CHARS = 4000; // shown of one line; the rest is said to be cut
  var ENDED = { RUN_STATE_SUCCESS: 1, RUN_STATE_WARNING: 1, RUN_STATE_FAILED: 1, RUN_STATE_ABORTED: 1 };
  var ROLES = { viewer: 1, runner: 2, editor: 3, admin: 4 };
  var PROGRESS = /insert (\S+): ([\d,]+)\/([\d,]+) rows \((\d+)%\), ([\d,]+) rows\/s, about (\d+)s left/;
  var INSERTED = /insert (\S+): ([\d,]+) rows in [\d.]+s \(([\d,]+) rows\/s\)/; // a bulk insert's summary
  var EDITOR_ASSETS = {
    css: ["static/vendor/codemirror/codemirror.css", "static/vendor/codemirror/addon/hint/show-hint.css"],
    js: [
      "static/vendor/codemirror/codemirror.js",
      "static/vendor/codemirror/mode/python/python.js",
      "static/vendor/codemirror/addon/hint/show-hint.js",
      "static/vendor/codemirror/addon/edit/matchbrackets.js",
      "static/vendor/codemirror/addon/edit/closebrackets.js",
      "static/vendor/codemirror/addon/selection/active-line.js",
      "static/editor.js",
    ],
  };

  // -- small helpers ---------------------------------------------------------------------------

  /** An element: h("a", {href: "#/x", class: "c", onclick: fn}, "text", child, ...). Strings are text. */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key.slice(0, 2) === "on" && typeof value === "function") el.addEventListener(key.slice(2), value);
        else if (key === "text") el.textContent = value;
        else if (key === "value") el.value = value;
        else if (key === "style") el.style.cssText = value; // CSSOM: allowed by the page's CSP, a style attribute is not
        else if (value === true) el.setAttribute(key, "");
        else el.setAttribute(key, String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  /** Text safe to show: ANSI escape sequences removed, other control characters as visible symbols. */
  function printable(text) {
    text = String(text === undefined || text === null ? "" : text);
    text = text.replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, "").replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "");
    text = text.replace(/\t/g, "    ");
    // C0 controls as their symbols; DEL, C1 controls (8-bit CSI among them), direction marks and
    // overrides, invisible separators and zero-width characters as \uXXXX.
    return text.replace(/[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g, function (c) {
      var code = c.charCodeAt(0);
      if (code < 0x20) return String.fromCharCode(0x2400 + code);
      return "\\u" + ("000" + code.toString(16)).slice(-4);
    });
  }

  /** printable() of each line of a text that has several (a source, a traceback, a long message):
   * its line breaks stay line breaks, where a log line shows a stray one as a symbol. */
  function printableLines(text) {
    return String(text === undefined || text === null ? "" : text).split(/\r?\n/).map(printable).join("\n");
  }

  function enc(text) { return encodeURIComponent(text); }

  /** Whether the page shown when this was called is still the one shown: an answer arriving after
   * the user went elsewhere must not draw over the page they are on. */
  function live() { var view = state.view; return function () { return view === state.view; }; }
  function short(name) { return String(name || "").replace(/^RUN_STATE_/, "").replace(/^FAILURE_REASON_/, ""); }
  function num(value) { var n = Number(value || 0); return isFinite(n) ? n : 0; }
  function fmt(n) { return num(n).toLocaleString("en-US"); }

  function when(stamp) {
    if (!stamp) return "";
    var d = new Date(stamp);
    return isNaN(d) ? "" : d.toLocaleString();
  }

  function took(start, end) {
    if (!start) return "";
    var ms = (end ? new Date(end) : new Date()) - new Date(start);
    if (!(ms >= 0)) return "";
    if (ms < 1000) return Math.round(ms) + " ms";
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60);
    return m + " min " + Math.round(s - m * 60) + " s";
  }

  function badge(stateName) {
    var text = short(stateName) || "—";
    return h("span", { class: "badge " + text }, text);
  }

  function toast(message, bad) {
    var box = document.getElementById("toast");
    var text = printableLines(message);
    // The same message again (a refresh failing every 2 s while the coordinator restarts) is not
    // shown twice.
    if (Array.prototype.some.call(box.children, function (m) { return m.textContent === text; })) return;
    var item = h("div", { class: "msg" + (bad ? " bad" : "") }, text);
    box.appendChild(item);
    setTimeout(function () { if (item.parentNode) item.parentNode.removeChild(item); }, bad ? 9000 : 4000);
  }

  function roleIn(project) {
    var me = state.me;
    if (!me) return 0;
    if (me.superuser) return ROLES.admin;
    return ROLES[(me.roles || {})[project || "default"]] || 0;
  }

  function maxRole() {
    var me = state.me;
    if (!me) return 0;
    if (me.superuser) return ROLES.admin;
    return Object.keys(me.roles || {}).reduce(function (best, p) { return Math.max(best, ROLES[me.roles[p]] || 0); }, 0);
  }

  // -- the API ---------------------------------------------------------------------------------

  function ApiError(status, code, message, details) {
    this.status = status; this.code = code; this.message = message; this.details = details || {};
  }
  ApiError.prototype = Object.create(Error.prototype);

  function api(path, options) {
    options = options || {};
    var method = options.method || "GET";
    var headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(path, init).then(function (answer) {
      if (answer.status === 204) return null;
      return answer.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (answer.ok) return body;
        var error = (body && body.error) || {};
        var failure = new ApiError(answer.status, error.code || "http_" + answer.status,
          error.message || answer.statusText || "the coordinator answered " + answer.status, error.details);
        if (answer.status === 401 && path.indexOf("/console/session") !== 0) {
          signIn("Your session has ended: sign in again.");
        }
        throw failure;
      });
    }, function () {
      throw new ApiError(0, "unreachable", "the coordinator cannot be reached: is it running?");
    });
  }

  function failed(error) {
    if (error && error.status === 401) return; // the sign-in page is showing
    toast((error && error.message) || String(error), true);
  }

  // -- page frame ------------------------------------------------------------------------------

  function leave() {
    state.cleanup.splice(0).forEach(function (stop) { try { stop(); } catch (e) { /* gone */ } });
  }

  function page(title, nodes) {
    leave();
    clear(main);
    document.title = title ? title + " · Seedbed" : "Seedbed";
    append(main, nodes);
    var current = (location.hash.split("/")[1] || "scenarios");
    Array.prototype.forEach.call(document.querySelectorAll("#nav a"), function (a) {
      if (a.getAttribute("href") === "#/" + current) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  }

  function showFrame(signedIn) {
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("who").hidden = !signedIn;
    if (signedIn) {
      var me = state.me;
      document.getElementById("who-name").textContent = me.user_id + (me.superuser ? " (admin)" : "");
    }
  }

  function signIn(message) {
    state.view++;
    leave();
    state.me = null;
    showFrame(false);
    var input = h("input", { id: "api-key", type: "password", autocomplete: "off", spellcheck: "false", required: true, placeholder: "sbk_…" });
    var problem = h("p", { role: "alert", class: "muted" }, message || "");
    var form = h("form", { class: "panel signin", "aria-labelledby": "signin-title" },
      h("h1", { id: "signin-title" }, "Sign in to Seedbed"),
      h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input),
      h("p", { class: "muted" }, "Any API key works; you see and do what its roles allow. The key is kept in an encrypted session cookie, never in the page."),
      problem,
      h("button", { type: "submit", class: "primary" }, "Sign in"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      problem.textContent = "";
      api("/console/session", { method: "POST", body: { api_key: input.value } }).then(function (me) {
        input.value = "";
        started(me);
      }, function (error) { problem.textContent = printable(error.message); });
    });
    clear(main);
    document.title = "Sign in · Seedbed";
    main.appendChild(form);
    input.focus();
  }

  function started(me) {
    state.me = me;
    state.csrf = me.csrf_token;
    showFrame(true);
    if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/scenarios";
    else route();
  }

  document.getElementById("sign-out").addEventListener("click", function () {
    api("/console/session", { method: "DELETE" }).catch(function () { /* signed out anyway */ }).then(function () {
      signIn("Signed out.");
    });
  });

  function route() {
    if (!state.me) return;
    if (location.hash && location.hash.indexOf("#/") !== 0) return; // "Skip to content" and the like
    state.view++;
    var parts = location.hash.replace(/^#\/?/, "").split("/").map(function (part) {
      try { return decodeURIComponent(part); } catch (e) { return part; } // a malformed link: its text
    });
    var view = parts[0] || "scenarios";
    var id = parts.slice(1).join("/");
    var views = {
      scenarios: id ? (id === "new" ? newScenarioPage : scenarioPage) : scenariosPage,
      runs: id ? runPage : runsPage,
      templates: id ? templatePage : templatesPage,
      connections: connectionsPage,
    };
    (views[view] || notFoundPage)(id);
    main.focus({ preventScroll: true });
  }

  function notFoundPage() {
    page("Not found", [h("h1", null, "Nothing here"), h("p", null, h("a", { href: "#/scenarios" }, "Back to the scenarios"))]);
  }

  window.addEventListener("hashchange", route);

  // -- scenarios ---------------------------------------------------------------------------------

  function scenariosPage() {
    var body = h("tbody");
    var more = h("button", { type: "button", hidden: true }, "Load more");
    var wanted = sessionStorage.getItem("seedbed.project") || "";
    var known = Object.keys((state.me && state.me.roles) || {});
    if (wanted && known.indexOf(wanted) < 0) known.push(wanted);
    var project = h("select", { id: "project-filter" }, h("option", { value: "" }, "All projects"));
    function addProject(key) {
      if (!key || Array.prototype.some.call(project.options, function (o) { return o.value === key; })) return;
      project.appendChild(h("option", { value: key }, key));
    }
    known.sort().forEach(addProject);
    project.value = wanted;
    var table = h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, h("th", null, "Scenario"), h("th", { class: "hide-narrow" }, "Project"),
        h("th", null, "Status"), h("th", null, "Last outcome"), h("th", { class: "hide-narrow" }, "Next run"),
        h("th", { class: "hide-narrow" }, "Changed by"))), body));
    page("Scenarios", [
      h("h1", null, "Scenarios", maxRole() >= ROLES.editor ? h("a", { class: "button", href: "#/scenarios/new" }, "New scenario") : null),
      h("div", { class: "row", style: "margin-bottom:10px" }, h("label", { for: "project-filter" }, "Project"), project),
      table, h("p", null, more)]);
    var token = "", generation = 0, loading = false, ok = live();
    function load() {
      if (loading) return;
      loading = true;
      more.disabled = true;
      var mine = generation; // a change of project since makes this answer stale
      var filter = project.value ? "&project_key=" + enc(project.value) : "";
      api("/v1/scenarios?page_size=100" + filter + (token ? "&page_token=" + enc(token) : "")).then(function (answer) {
        if (mine !== generation || !ok()) return;
        loading = false;
        more.disabled = false;
        if (!answer.scenarios.length && !body.firstChild) {
          body.appendChild(h("tr", null, h("td", { colspan: 6, class: "muted" }, project.value ? "No scenarios in this project." : "No scenarios yet.")));
        }
        answer.scenarios.forEach(function (s) { addProject(s.project_key); body.appendChild(scenarioRow(s)); });
        token = answer.next_page_token;
        more.hidden = !token;
      }, function (error) {
        if (mine !== generation) return;
        loading = false;
        more.disabled = false;
        failed(error);
      });
    }
    project.addEventListener("change", function () {
      sessionStorage.setItem("seedbed.project", project.value);
      generation++;
      loading = false;
      token = "";
      clear(body);
      load();
    });
    more.addEventListener("click", load);
    load();
  }

  function scenarioRow(s) {
    var status = h("td", null, h("span", { class: "muted" }, "…"));
    var last = h("td", null);
    var next = h("td", { class: "hide-narrow" });
    var active = !(s.settings && s.settings.active === false);
    api("/v1/scenarios/" + enc(s.id) + "/status").then(function (st) {
      clear(status).appendChild(st.running ? badge("RUNNING") : h("span", { class: "muted" }, active ? "idle" : "inactive"));
      if (st.last_run_id) last.appendChild(h("a", { href: "#/runs/" + enc(st.last_run_id) }, badge(st.last_outcome)));
      else last.appendChild(h("span", { class: "muted" }, "never run"));
      if (st.next_run_time) next.textContent = when(st.next_run_time);
    }, function () { clear(status).appendChild(h("span", { class: "muted" }, "?")); });
    return h("tr", null,
      h("td", null, h("a", { href: "#/scenarios/" + enc(s.id) }, printable(s.name || s.id)),
        s.name && s.name !== s.id ? h("div", { class: "muted" }, printable(s.id)) : null),
      h("td", { class: "hide-narrow" }, printable(s.project_key)), status, last, next,
      h("td", { class: "hide-narrow" }, printable(s.last_modified_by)));
  }

  var NEW_SCRIPT = [
    "from seedbed.sdk import Seedbed, params",
    "",
    "dm = Seedbed()",
    "",
    "print(f\"hello {params.get('who', 'world')}\")",
    "",
  ].join("\n");

  function newScenarioPage() {
    var me = state.me;
    var projects = me.superuser ? ["default"] : Object.keys(me.roles || {}).filter(function (p) { return roleIn(p) >= ROLES.editor; });
    if (me.superuser) Object.keys(me.roles || {}).forEach(function (p) { if (projects.indexOf(p) < 0) projects.push(p); });
    var id = h("input", { id: "scenario-id", required: true, pattern: "[A-Za-z0-9_\\-]+", placeholder: "scn_orders" });
    var name = h("input", { id: "scenario-name", placeholder: "Seed the orders" });
    var project = h("select", { id: "scenario-project" }, projects.map(function (p) { return h("option", { value: p }, p); }));
    var editorBox = h("div", { class: "editor-box" });
    var save = h("button", { type: "button", class: "primary" }, "Create");
    page("New scenario", [
      h("h1", null, "New scenario"),
      h("div", { class: "panel" },
        h("div", { class: "row" },
          h("div", { class: "field grow" }, h("label", { for: "scenario-id" }, "Id"), id),
          h("div", { class: "field grow" }, h("label", { for: "scenario-name" }, "Name"), name),
          h("div", { class: "field" }, h("label", { for: "scenario-project" }, "Project"), project))),
      editorBox, h("p", { class: "row" }, save)]);
    var editor = makeEditor(editorBox, NEW_SCRIPT, false);
    save.addEventListener("click", function () {
      if (!id.value.trim()) { toast("Give the scenario an id.", true); id.focus(); return; }
      save.disabled = true;
      api("/v1/scenarios/" + enc(id.value.trim()), {
        method: "PUT",
        body: { name: name.value.trim() || null, script: editor.getValue(), project_key: project.value, expected_revision: 0 },
      }).then(function (scenario) {
        toast("Created " + scenario.id);
        location.hash = "#/scenarios/" + enc(scenario.id);
      }, function (error) { save.disabled = false; failed(error); });
    });
  }

  function scenarioPage(scenarioId) {
    page("Scenario", [h("p", { class: "muted" }, "Loading…")]);
    var ok = live();
    api("/v1/scenarios/" + enc(scenarioId)).then(function (scenario) { if (ok()) scenarioView(scenario); }, function (error) {
      if (ok()) problemPage("scenario " + scenarioId, error);
    });
  }

  /** The page when what it shows cannot be read: not found, not allowed, or the coordinator away. */
  function problemPage(what, error) {
    if (error.status === 401) return; // the sign-in page is showing
    page(error.status === 404 ? "Not found" : "Error", [
      h("h1", null, (error.status === 404 ? "No " : "Cannot show ") + printable(what)),
      h("p", { role: "alert" }, printableLines(error.message)),
      h("p", null, h("button", { type: "button", onclick: route }, "Try again"))]);
  }

  function scenarioView(scenario) {
    var role = roleIn(scenario.project_key);
    var canEdit = role >= ROLES.editor, canRun = role >= ROLES.runner;
    var loaded = scenario;
    var editorBox = h("div", { class: "editor-box" });
    var name = h("input", { id: "scenario-name", value: scenario.name || "", readonly: !canEdit });
    var settingsText = h("textarea", { id: "scenario-settings", rows: 12, readonly: !canEdit, spellcheck: "false" });
    settingsText.value = JSON.stringify(scenario.settings || {}, null, 2);
    var params = paramsEditor();
    var saveButton = canEdit ? h("button", { type: "button", class: "primary" }, "Save") : null;
    var runButton = canRun ? h("button", { type: "button", class: "primary" }, "Run") : null;
    var revision = h("span", { class: "muted" });
    function showRevision() {
      revision.textContent = "revision " + loaded.revision + (loaded.last_modified_by ? " · by " + printable(loaded.last_modified_by) : "") +
        (loaded.update_time ? " · " + when(loaded.update_time) : "");
    }
    showRevision();
    var runsBody = h("tbody");
    var summary = h("div", null, settingsSummary(scenario.settings || {}));
    function showSettings(settings) {
      clear(summary).appendChild(settingsSummary(settings || {}));
      settingsText.value = JSON.stringify(settings || {}, null, 2);
    }
    /** What a save writes, as one text to compare: the script, then the name and the settings. */
    function whole(x) {
      return x.script + "\n# -- name --\n" + (x.name || "") + "\n# -- settings --\n" + JSON.stringify(x.settings || {}, null, 2);
    }
    page(scenario.name || scenario.id, [
      h("h1", null, printable(scenario.name || scenario.id), h("span", { class: "muted" }, printable(scenario.project_key)), revision),
      canEdit ? null : h("p", { class: "notice" }, canRun ? "You may run this scenario, not change it." : "You may read this scenario; running and changing it need another role."),
      h("div", { class: "split" },
        h("div", null,
          h("div", { class: "field" }, h("label", { for: "scenario-name" }, "Name"), name),
          editorBox,
          h("p", { class: "row" }, saveButton, runButton, h("span", { class: "muted grow" }, canRun ? "Run starts the saved script with the parameters on the right." : ""))),
        h("div", null,
          canRun ? h("div", { class: "panel" }, h("h2", null, "Parameters"), params.node) : null,
          h("div", { class: "panel" }, h("h2", null, "Settings"), summary,
            h("details", null, h("summary", null, canEdit ? "Edit settings (JSON)" : "Settings as JSON"),
              h("div", { class: "field" }, h("label", { for: "scenario-settings" }, "Settings (JSON)"), settingsText))))),
      h("h2", null, "Recent runs"),
      h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", null, "Run"), h("th", null, "State"),
        h("th", null, "Started"), h("th", null, "Took"), h("th", { class: "hide-narrow" }, "By"))), runsBody))]);
    var editor = makeEditor(editorBox, scenario.script, !canEdit);
    loadRuns(runsBody, scenario.id, 10);

    function body(expected) {
      var settings;
      try { settings = JSON.parse(settingsText.value || "{}"); } catch (e) {
        throw new ApiError(400, "invalid_argument", "The settings are not valid JSON: " + e.message);
      }
      return { name: name.value, script: editor.getValue(), settings: settings, expected_revision: expected };
    }

    function save(expected) {
      var request;
      try { request = body(expected); } catch (e) { failed(e); return Promise.resolve(false); }
      saveButton.disabled = true;
      return api("/v1/scenarios/" + enc(scenario.id), { method: "PUT", body: request }).then(function (saved) {
        saveButton.disabled = false;
        loaded = saved;
        showRevision();
        showSettings(saved.settings);
        toast("Saved (revision " + saved.revision + ")");
        return true;
      }, function (error) {
        saveButton.disabled = false;
        if (error.status === 409) return conflict(request);
        failed(error);
        return false;
      });
    }

    function conflict(mine) {
      return api("/v1/scenarios/" + enc(scenario.id)).then(function (theirs) {
        return new Promise(function (resolve) {
          var dialog = h("dialog", { "aria-labelledby": "conflict-title" },
            h("h2", { id: "conflict-title" }, "Changed by " + printable(theirs.last_modified_by || "someone else") + " since you opened it"),
            h("p", null, "Revision " + theirs.revision + " is saved now; you started from revision " + loaded.revision + ". Lines only in theirs are red, lines only in yours are green."),
            diffView(whole(theirs), whole(mine)),
            h("p", { class: "row" },
              h("button", { type: "button", class: "danger", onclick: function () { dialog.close(); loaded = theirs; resolve(save(theirs.revision)); } }, "Save mine over theirs"),
              h("button", { type: "button", onclick: function () { dialog.close(); loaded = theirs; editor.setValue(theirs.script); name.value = theirs.name; showSettings(theirs.settings); showRevision(); resolve(false); } }, "Take theirs"),
              h("button", { type: "button", onclick: function () { dialog.close(); resolve(false); } }, "Cancel")));
          document.body.appendChild(dialog);
          // Escape closes it too: the save then did not happen (a button has resolved before).
          dialog.addEventListener("close", function () { dialog.remove(); resolve(false); });
          dialog.showModal();
        });
      }, function (error) { failed(error); return false; });
    }

    if (saveButton) saveButton.addEventListener("click", function () { save(loaded.revision); });
    // Ctrl+S (⌘S) saves, Ctrl+Enter (⌘↩) runs: the buttons' own shortcuts, in the editor too.
    function keys(event) {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || document.querySelector("dialog[open]")) return;
      var button = event.key === "s" || event.key === "S" ? saveButton : event.key === "Enter" ? runButton : null;
      if (!button) return;
      event.preventDefault();
      if (!button.disabled) button.click();
    }
    document.addEventListener("keydown", keys, true);
    state.cleanup.push(function () { document.removeEventListener("keydown", keys, true); });
    if (saveButton) saveButton.setAttribute("aria-keyshortcuts", "Control+S");
    if (runButton) runButton.setAttribute("aria-keyshortcuts", "Control+Enter");
    if (runButton) runButton.addEventListener("click", function () {
      var dirty = canEdit && (editor.getValue() !== loaded.script || name.value !== (loaded.name || "") ||
        settingsText.value !== JSON.stringify(loaded.settings || {}, null, 2));
      var first = dirty ? save(loaded.revision) : Promise.resolve(true);
      first.then(function (ok) {
        if (!ok) return;
        runButton.disabled = true;
        startRun(scenario, params.values()).then(function () { runButton.disabled = false; }, function (error) {
          runButton.disabled = false; failed(error);
        });
      });
    });
  }

  function settingsSummary(settings) {
    var triggers = settings.triggers || [], reporters = settings.reporters || [];
    var retry = settings.retry_policy || {};
    return h("dl", { class: "kv" },
      h("dt", null, "Active"), h("dd", null, settings.active === false ? "no (triggers do not fire)" : "yes"),
      h("dt", null, "Timeout"), h("dd", null, settings.timeout_seconds ? settings.timeout_seconds + " s" : "the coordinator's default"),
      h("dt", null, "Overlap"), h("dd", null, String(settings.overlap_policy || "").replace(/^OVERLAP_POLICY_/, "").toLowerCase() || "default"),
      h("dt", null, "Attempts"), h("dd", null, retry.maximum_attempts ? String(retry.maximum_attempts) : "default"),
      h("dt", null, "Triggers"), h("dd", null, triggers.length ? triggers.map(function (t) {
        return h("div", null, printable(t.name || t.id) + (t.cron ? " · cron " + printable(t.cron.expression || JSON.stringify(t.cron)) : "") + (t.active === false ? " (off)" : ""));
      }) : "none"),
      h("dt", null, "Reporters"), h("dd", null, reporters.length ? reporters.map(function (r) {
        var to = r.webhook ? "webhook " + printable(r.webhook.url || "") : r.email ? "e-mail " + printable((r.email.to || []).join(", ")) : "";
        return h("div", null, printable(r.name || r.id) + (to ? " · " + to : "") + (r.active === false ? " (off)" : ""));
      }) : "none"));
  }

  function paramsEditor() {
    var list = h("div");
    function addRow(key, value) {
      var k = h("input", { "aria-label": "Parameter name", placeholder: "name", value: key || "" });
      var v = h("input", { "aria-label": "Parameter value", placeholder: "value", value: value || "" });
      var row = h("div", { class: "row", style: "margin-bottom:6px" }, k, v,
        h("button", { type: "button", "aria-label": "Remove parameter", onclick: function () { row.remove(); } }, "×"));
      list.appendChild(row);
    }
    var node = h("div", null, list, h("button", { type: "button", onclick: function () { addRow(); } }, "Add parameter"));
    return {
      node: node,
      values: function () {
        var out = {};
        Array.prototype.forEach.call(list.children, function (row) {
          var inputs = row.querySelectorAll("input");
          if (inputs[0].value.trim()) out[inputs[0].value.trim()] = inputs[1].value;
        });
        return out;
      },
    };
  }

  function startRun(scenario, params) {
    var path = "/v1/projects/" + enc(scenario.project_key || "default") + "/scenarios/" + enc(scenario.id) + "/run";
    return api(path, { method: "POST", body: { params: params } }).then(function (answer) {
      if (answer.run) { location.hash = "#/runs/" + enc(answer.run.id); return; }
      return waitForFire(answer.fire);
    });
  }

  function waitForFire(fire) {
    if (fire.state === "TRIGGER_FIRE_STATE_CANCELLED") {
      toast("Not started: " + (fire.cancel_reason || "cancelled"), true);
      return Promise.resolve();
    }
    toast("Queued" + (fire.queue_reason ? ": " + fire.queue_reason : "") + "; the run page opens when it starts.");
    return new Promise(function (resolve) {
      var timer = setInterval(function () {
        api("/v1/fires/" + enc(fire.id)).then(function (now) {
          if (now.run_id) { clearInterval(timer); location.hash = "#/runs/" + enc(now.run_id); resolve(); }
          else if (now.state === "TRIGGER_FIRE_STATE_CANCELLED") { clearInterval(timer); toast("Not started: " + now.cancel_reason, true); resolve(); }
        }, function (error) { clearInterval(timer); failed(error); resolve(); });
      }, 1000);
      state.cleanup.push(function () { clearInterval(timer); });
    });
  }

  /** A line diff (longest common subsequence), as rows of [" ", "-", "+"] and the line. */
  function diffLines(before, after) {
    var a = String(before || "").split("\n"), b = String(after || "").split("\n");
    if (a.length * b.length > 4000000) return [["-", "(too large to compare line by line: " + a.length + " and " + b.length + " lines)"]];
    var n = a.length, m = b.length, table = [];
    for (var i = 0; i <= n; i++) table.push(new Int32Array(m + 1));
    for (i = n - 1; i >= 0; i--) for (var j = m - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
    var out = []; i = 0; j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
      else if (table[i + 1][j] >= table[i][j + 1]) out.push(["-", a[i++]]);
      else out.push(["+", b[j++]]);
    }
    while (i < n) out.push(["-", a[i++]]);
    while (j < m) out.push(["+", b[j++]]);
    return out;
  }

  function diffView(theirs, mine) {
    return h("div", { class: "diff", role: "region", "aria-label": "Differences" }, diffLines(theirs, mine).map(function (d) {
      return h("div", { class: d[0] === "+" ? "add" : d[0] === "-" ? "del" : "" }, d[0] + " " + printable(d[1]));
    }));
  }

  // -- the editor (loaded only on the pages that edit) -------------------------------------------

  function loadEditorAssets() {
    if (state.editorAssets) return state.editorAssets;
    function one(url) {
      return new Promise(function (resolve, reject) {
        var el = url.slice(-4) === ".css" ? h("link", { rel: "stylesheet", href: url }) : h("script", { src: url });
        el.onload = resolve;
        el.onerror = function () { reject(new Error("could not load " + url)); };
        document.head.appendChild(el);
      });
    }
    state.editorAssets = Promise.all(EDITOR_ASSETS.css.map(one)).then(function () {
      return EDITOR_ASSETS.js.reduce(function (chain, url) { return chain.then(function () { return one(url); }); }, Promise.resolve());
    }).then(function () {
      return fetch("static/sdk-completions.json", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }, function () { return null; });
    });
    state.editorAssets.catch(function () { state.editorAssets = null; }); // a failed load is tried again next time
    return state.editorAssets;
  }

  /** An editor in `box`: the vendored code editor once loaded, a plain text area until then (and
   * if it cannot load). getValue/setValue work at once. */
  function makeEditor(box, text, readOnly) {
    var plain = h("textarea", { class: "plain", "aria-label": "Scenario script", spellcheck: "false", readonly: readOnly });
    plain.value = text || "";
    box.appendChild(plain);
    var real = null;
    loadEditorAssets().then(function (completions) {
      if (!plain.isConnected || !window.SeedbedEditor) return;
      var value = plain.value;
      clear(box);
      real = window.SeedbedEditor.create(box, { value: value, readOnly: readOnly, completions: completions, label: "Scenario script" });
      box.setAttribute("data-editor", "ready");
    }, function () { box.setAttribute("data-editor", "plain"); });
    return {
      getValue: function () { return real ? real.getValue() : plain.value; },
      setValue: function (v) { if (real) real.setValue(v); else plain.value = v; },
    };
  }

  // -- runs --------------------------------------------------------------------------------------

  function runRow(run, withScenario) {
    return h("tr", null,
      h("td", null, h("a", { href: "#/runs/" + enc(run.id) }, run.id)),
      withScenario ? h("td", null, h("a", { href: "#/scenarios/" + enc(run.scenario_id) }, printable(run.scenario_id))) : null,
      h("td", null, badge(run.state)),
      h("td", null, when(run.start_time || run.create_time)),
      h("td", null, took(run.start_time, run.end_time)),
      h("td", { class: "hide-narrow" }, printable(run.triggered_by)));
  }

  function loadRuns(body, scenarioId, size) {
    return api("/v1/runs?page_size=" + size + (scenarioId ? "&scenario_id=" + enc(scenarioId) : "")).then(function (answer) {
      clear(body);
      if (!answer.runs.length) body.appendChild(h("tr", null, h("td", { colspan: 6, class: "muted" }, "No runs yet.")));
      answer.runs.forEach(function (run) { body.appendChild(runRow(run, !scenarioId)); });
      return answer.next_page_token;
    }, failed);
  }

  function runsPage() {
    var body = h("tbody");
    page("Runs", [h("h1", null, "Runs"), h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, h("th", null, "Run"), h("th", null, "Scenario"), h("th", null, "State"),
        h("th", null, "Started"), h("th", null, "Took"), h("th", { class: "hide-narrow" }, "By"))), body))]);
    loadRuns(body, "", 100);
    var timer = setInterval(function () { loadRuns(body, "", 100); }, 5000);
    state.cleanup.push(function () { clearInterval(timer); });
  }

  function runPage(runId) {
    var head = h("div");
    var errorBox = h("div");
    var steps = h("div");
    var bars = h("div");
    var logs = new LogView();
    var after = h("div");
    var connection = h("span", { class: "muted", role: "status" }, "connecting…");
    page("Run " + runId, [head, errorBox, h("div", { class: "panel" }, h("h2", null, "Steps"), bars, steps),
      h("div", { class: "panel" }, h("div", { class: "log-bar" }, h("h2", { style: "margin:0" }, "Log"), logs.controls, connection), logs.node),
      after]);
    var run = null, ended = false, progress = new Map(); // table → progress (names come from scripts)
    var shown = "", asking = false, script = null, ok = live();

    /** The scenario's script, read once for the first error's excerpt. */
    function scenarioScript() {
      if (!script) script = api("/v1/scenarios/" + enc(run.scenario_id));
      return script;
    }

    function render() {
      var role = roleIn(run.project_key);
      var live = !ENDED[run.state];
      clear(head).appendChild(h("div", null,
        h("h1", null, "Run " + run.id, badge(run.state)),
        h("div", { class: "row" },
          h("span", null, "Scenario ", h("a", { href: "#/scenarios/" + enc(run.scenario_id) }, printable(run.scenario_id))),
          h("span", { class: "muted" }, "started " + when(run.start_time || run.create_time)),
          h("span", { class: "muted" }, took(run.start_time, run.end_time)),
          h("span", { class: "muted" }, "by " + printable(run.triggered_by)),
          Object.keys(run.params || {}).length ? h("span", { class: "muted" }, "params " + Object.keys(run.params).sort().map(function (k) {
            return printable(k) + "=" + printable(run.params[k]);
          }).join(" ")) : null,
          h("span", { class: "grow" }),
          live && role >= ROLES.runner ? h("button", { type: "button", class: "danger", onclick: abort }, "Abort…") : null,
          !live && role >= ROLES.editor ? h("button", { type: "button", class: "danger", onclick: purge }, "Purge…") : null),
        attemptsView(run)));
      clear(errorBox);
      if (run.first_error && (run.first_error.type || run.first_error.message)) errorBox.appendChild(errorView(run, scenarioScript));
      clear(steps).appendChild(stepsView(run));
    }

    /** Read the run again: one question at a time (so answers cannot cross), never back from an
     * ended state, and the page redrawn only when the run changed (focus and open details stay). */
    function refresh() {
      if (asking || !ok()) return;
      asking = true;
      api("/v1/runs/" + enc(runId)).then(function (r) {
        asking = false;
        if (!ok() || (run && ENDED[run.state] && !ENDED[r.state])) return;
        var text = JSON.stringify(r);
        if (text !== shown) { shown = text; run = r; render(); }
        if (ENDED[run.state] && !ended) { ended = true; finished(); }
      }, function (error) {
        asking = false;
        if (!ok()) return;
        if (error.status === 0) connection.textContent = "the coordinator cannot be reached; reconnecting…";
        else if (!run) problemPage("run " + runId, error);
        else failed(error);
      });
    }

    function finished() {
      clear(after);
      after.appendChild(batchesView(runId));
      after.appendChild(assetsView(runId));
      after.appendChild(traceView(runId));
    }

    function abort() {
      confirmDialog("Abort run " + runId + "?", "The run stops; what it already wrote stays (purge it afterwards).", "Abort the run", true).then(function (reason) {
        if (reason === null) return;
        api("/v1/runs/" + enc(runId) + "/abort", { method: "POST", body: { reason: reason } }).then(function () { toast("Abort asked"); }, failed);
      });
    }

    /** Ask what a purge would do (a dry run), show it, then purge and show what it did. */
    function purge() {
      api("/v1/runs/" + enc(runId) + "/purge?dry_run=true", { method: "POST" }).then(function (plan) {
        var counts = purgeCounts(plan);
        var action = "Purge " + fmt(counts.deleted) + " rows" + (counts.restored ? ", put back " + fmt(counts.restored) : "");
        confirmDialog("Purge what run " + runId + " wrote?", purgeReport(plan), action, false).then(function (ok) {
          if (ok === null) return;
          api("/v1/runs/" + enc(runId) + "/purge", { method: "POST" }).then(function (done) {
            var failures = done.failures || [];
            toast("Purged " + fmt(purgeCounts(done).deleted) + " rows" + (failures.length ? "; " + failures.length + " failed: " + failures[0].message : ""), failures.length > 0);
            noticeDialog("Purged what run " + runId + " wrote", purgeReport(done));
            finished();
          }, failed);
        });
      }, failed);
    }

    logs.onProgress = function (table, p) { progress.set(table, p); renderBars(); };
    function renderBars() {
      clear(bars);
      progress.forEach(function (p, table) {
        var pct = p.total ? Math.min(100, Math.round(100 * p.done / p.total)) : 0;
        bars.appendChild(h("div", { class: "row", style: "margin-bottom:6px" },
          h("span", { style: "min-width:10ch" }, "insert " + printable(table)),
          h("div", { class: "progress grow", role: "progressbar", "aria-label": "rows written to " + table, "aria-valuemin": 0, "aria-valuemax": p.total, "aria-valuenow": p.done },
            h("div", { style: "width:" + pct + "%" })),
          h("span", { class: "muted" }, fmt(p.done) + " / " + fmt(p.total) + " rows · " + fmt(p.rate) + " rows/s" + (p.left ? " · ~" + p.left + " s left" : ""))));
      });
    }

    var stop = followLogs(runId, function (line) { logs.add(line); }, function () {
      connection.textContent = "ended";
      progress.forEach(function (p) { p.left = 0; });
      renderBars();
      if (!ended) refresh();
    }, function (status) { connection.textContent = status; });
    state.cleanup.push(stop);
    var timer = setInterval(function () { if (!ended) refresh(); else clearInterval(timer); }, 2000);
    state.logView = logs;
    state.cleanup.push(function () { clearInterval(timer); logs.stop(); state.logView = null; });
    refresh();
  }

  function attemptsView(run) {
    var attempts = run.attempts || [];
    if (attempts.length <= 1 && !(attempts[0] && attempts[0].error && attempts[0].error.type)) return null;
    return h("details", { open: attempts.length > 1 }, h("summary", null, attempts.length + " attempts"),
      h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "State"),
        h("th", null, "Node"), h("th", null, "Took"), h("th", null, "Error"))),
        h("tbody", null, attempts.map(function (a) {
          return h("tr", null, h("td", null, String(a.number)), h("td", null, printable(a.state + (a.outcome ? " " + a.outcome : ""))),
            h("td", null, printable(a.node)), h("td", null, took(a.start_time, a.end_time)),
            h("td", null, a.error && a.error.type ? printable(a.error.type + ": " + a.error.message) : ""));
        })))));
  }

  function stepsView(run) {
    var list = run.steps || [];
    if (!list.length) return h("p", { class: "muted" }, ENDED[run.state] ? "No steps." : "No step has started yet.");
    return h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", null, "Step"), h("th", null, "Outcome"),
      h("th", { class: "num" }, "Rows written"), h("th", { class: "num hide-narrow" }, "Rows generated"), h("th", null, "Took"))),
      h("tbody", null, list.map(function (s) {
        return h("tr", null, h("td", null, printable(s.name || "step " + s.number)), h("td", null, s.outcome ? badge(s.outcome) : h("span", { class: "muted" }, "running")),
          h("td", { class: "num" }, fmt(s.rows_written)), h("td", { class: "num hide-narrow" }, fmt(s.rows_generated)), h("td", null, took(s.start_time, s.end_time)));
      }))));
  }

  function errorView(run, scenarioScript) {
    var e = run.first_error;
    var box = h("div", { class: "error-box", role: "region", "aria-label": "First error" },
      h("strong", null, printable(e.type || short(e.reason))), ": ", printableLines(e.message),
      h("div", { class: "muted" }, short(e.reason) + (e.step ? " · step " + printable(e.step) : "") + (e.line ? " · line " + e.line : "")),
      e.traceback ? h("details", null, h("summary", null, "Traceback"), h("pre", null, printableLines(e.traceback))) : null);
    if (e.line) {
      var script = h("div", null, h("p", { class: "muted" }, "Loading the script…"));
      box.appendChild(script);
      scenarioScript().then(function (s) {
        clear(script);
        if (String(s.revision) !== String(run.scenario_revision) && run.scenario_revision) {
          script.appendChild(h("p", { class: "muted" }, "The script has changed since this run (revision " + run.scenario_revision + " ran; " + s.revision + " is shown)."));
        }
        script.appendChild(scriptExcerpt(s.script, e.line));
      }, function () { clear(script); });
    }
    return box;
  }

  /** The script's lines around `line`, numbered, `line` highlighted (no editor: the run page stays light). */
  function scriptExcerpt(text, line) {
    var lines = String(text || "").split("\n");
    var from = Math.max(1, line - 6), to = Math.min(lines.length, line + 6);
    var rows = [];
    for (var n = from; n <= to; n++) {
      rows.push(h("div", { class: n === line ? "del error-line" : "", "aria-current": n === line ? "true" : null, "data-line": n },
        String(n).padStart(4, " ") + "  " + printable(lines[n - 1])));
    }
    return h("div", { class: "diff", role: "region", "aria-label": "Script around line " + line }, rows);
  }

  function purgeCounts(answer) {
    return (answer.targets || []).reduce(function (sum, t) {
      sum.deleted += num(t.rows_deleted);
      sum.restored += num(t.rows_restored);
      sum.changed += num(t.rows_changed);
      sum.gone += Math.max(0, num(t.rows_recorded) - num(t.rows_deleted) - num(t.rows_restored) - num(t.rows_changed));
      return sum;
    }, { deleted: 0, restored: 0, changed: 0, gone: 0 });
  }

  var PURGE_LISTED = 20; // of each list in a purge's report; the rest are counted

  /** One list of a purge's report: a heading and each item as text, the first PURGE_LISTED. */
  function purgeList(label, heading, items, line) {
    if (!items.length) return null;
    var shown = items.slice(0, PURGE_LISTED).map(function (item) { return h("li", null, printable(line(item))); });
    if (items.length > PURGE_LISTED) shown.push(h("li", { class: "muted" }, "and " + fmt(items.length - PURGE_LISTED) + " more (seedbed run purge RUN --dry-run -o json lists them all)"));
    return h("div", { role: "group", "aria-label": label }, h("p", null, heading), h("ul", { class: "purge-list" }, shown));
  }

  /** What a purge did, or with dry_run would do (PurgeRunResponse): per table the rows deleted,
   * put back and left; the assets removed; what it cannot undo and why; the connections it did not
   * look at; where it failed. Everything from the answer is text. */
  function purgeReport(answer) {
    var dry = !!answer.dry_run, counts = purgeCounts(answer), rowsLeft = answer.rows_left || [];
    var assets = num(answer.assets_deleted);
    return h("div", { class: "purge-report" },
      purgeTable(answer),
      counts.gone ? h("p", { class: "muted" }, fmt(counts.gone) + " recorded row(s) were not found: deleted since the run, not an error.") : null,
      assets ? h("p", null, fmt(assets) + " asset(s), " + fmt(answer.asset_bytes_deleted) + " bytes, " + (dry ? "would be" : "were") + " removed with the run.") : null,
      purgeList("Not undone", (dry ? "Cannot be undone" : "Not undone") + " (" + fmt((answer.skipped || []).length) + " batch(es)):", answer.skipped || [], function (b) {
        return b.connection_id + " · " + b.operation + " " + b.target + " · call " + b.call + " batch " + b.batch + ": " + b.reason;
      }),
      purgeList("Rows left", "Left as they are (" + fmt(counts.changed || rowsLeft.length) + " row(s) changed since the run" + (rowsLeft.length < counts.changed ? "; the first listed" : "") + "):", rowsLeft, function (r) {
        return r.connection_id + " · " + r.table + " · key " + r.key + ": " + r.reason;
      }),
      purgeList("Connections skipped", "Connections " + (dry ? "it would not look at" : "not looked at") + ":", answer.skipped_connections || [], function (c) {
        return c.connection_id + ": " + c.reason;
      }),
      (answer.failures || []).length ? h("div", { class: "error-box", role: "alert" }, (answer.failures || []).map(function (f) {
        var where = f.table ? ", table " + f.table + ", call " + f.call + " batch " + f.batch : "";
        return h("p", null, printable("Failed on " + f.connection_id + where + ": " + f.message));
      }), h("p", { class: "muted" }, "What was purged before stays purged; purging again resumes there.")) : null);
  }

  function purgeTable(answer) {
    var targets = answer.targets || [], dry = !!answer.dry_run;
    if (!targets.length) {
      var why = (answer.failures || []).length ? "No rows were purged."
        : (answer.skipped_connections || []).length ? "No rows to purge through the connections it could look at."
          : "Nothing to purge: no batch of the run is left in its targets' write ledgers.";
      return h("p", { class: "muted" }, why);
    }
    var upserts = targets.some(function (t) { return num(t.rows_restored) || num(t.rows_changed); });
    return h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", null, "Connection"), h("th", null, "Table"),
      h("th", { class: "num" }, dry ? "Would delete" : "Deleted"),
      upserts ? h("th", { class: "num" }, dry ? "Would put back" : "Put back") : null,
      upserts ? h("th", { class: "num" }, "Left (changed since)") : null,
      h("th", { class: "num" }, "Recorded"))),
      h("tbody", null, targets.map(function (t) {
        return h("tr", null, h("td", null, printable(t.connection_id)), h("td", null, printable(t.table)), h("td", { class: "num" }, fmt(t.rows_deleted)),
          upserts ? h("td", { class: "num" }, fmt(t.rows_restored)) : null,
          upserts ? h("td", { class: "num" }, fmt(t.rows_changed)) : null,
          h("td", { class: "num" }, fmt(t.rows_recorded)));
      }))));
  }

  function batchesView(runId) {
    var box = h("div", { class: "panel" }, h("h2", null, "Write batches"), h("p", { class: "muted" }, "Loading…"));
    api("/v1/runs/" + enc(runId) + "/batches?page_size=1000").then(function (answer) {
      var groups = {}, order = [];
      (answer.batches || []).forEach(function (b) {
        var key = b.connection_id + "\u0000" + b.target;
        if (!groups[key]) { groups[key] = { connection: b.connection_id, target: b.target, batches: 0, rows: 0, replayed: 0 }; order.push(key); }
        var g = groups[key];
        g.batches += 1;
        if (num(b.rows) >= 0) g.rows += num(b.rows); else g.statements = true; // a statement: no row count
        if (b.status === "WRITE_BATCH_STATUS_REPLAYED") g.replayed += 1;
      });
      box.removeChild(box.lastChild);
      if (!order.length) { box.appendChild(h("p", { class: "muted" }, "This run wrote nothing through a connection.")); return; }
      box.appendChild(h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", null, "Connection"), h("th", null, "Target"),
        h("th", { class: "num" }, "Batches"), h("th", { class: "num" }, "Rows"), h("th", { class: "num" }, "Replayed"))),
        h("tbody", null, order.map(function (key) {
          var g = groups[key];
          return h("tr", null, h("td", null, printable(g.connection)), h("td", null, printable(g.target)), h("td", { class: "num" }, fmt(g.batches)),
            h("td", { class: "num" }, g.statements && !g.rows ? "—" : fmt(g.rows)), h("td", { class: "num" }, fmt(g.replayed)));
        })))));
      if (answer.next_page_token) box.appendChild(h("p", { class: "muted" }, "The first 1,000 batches are counted."));
    }, function (error) { box.removeChild(box.lastChild); box.appendChild(h("p", { class: "muted" }, printable(error.message))); });
    return box;
  }

  /** The files the run kept, each a download link (a GET: the session cookie is its key; the
   * coordinator serves it as an attachment, so the browser saves it and never renders it). */
  function assetsView(runId) {
    var box = h("div", { class: "panel" }, h("h2", null, "Assets"), h("p", { class: "muted" }, "Loading…"));
    api("/v1/runs/" + enc(runId) + "/assets").then(function (answer) {
      box.removeChild(box.lastChild);
      var assets = answer.assets || [];
      if (!assets.length) { box.appendChild(h("p", { class: "muted" }, "This run kept no files.")); return; }
      box.appendChild(h("div", { class: "table-wrap" }, h("table", { id: "run-assets" }, h("thead", null, h("tr", null, h("th", null, "Name"),
        h("th", { class: "num" }, "Size"), h("th", null, "Type"), h("th", null, "SHA-256"))),
        h("tbody", null, assets.map(function (a) {
          var href = "/v1/runs/" + enc(runId) + "/assets/" + String(a.name).split("/").map(enc).join("/");
          return h("tr", null, h("td", null, h("a", { href: href, download: String(a.name).split("/").pop() }, printable(a.name))),
            h("td", { class: "num" }, fmt(a.size_bytes) + " B"), h("td", null, printable(a.content_type)),
            h("td", { class: "muted", title: printable(a.sha256) }, printable(String(a.sha256).slice(0, 16)) + "…"));
        })))));
    }, function (error) { box.removeChild(box.lastChild); box.appendChild(h("p", { class: "muted" }, printable(error.message))); });
    return box;
  }

  function traceView(runId) {
    var box = h("div", { class: "panel" }, h("h2", null, "Trace"), h("p", { class: "muted" }, "Loading…"));
    api("/v1/runs/" + enc(runId) + "/trace").then(function (trace) {
      box.removeChild(box.lastChild);
      var spans = trace.spans || [];
      if (!spans.length) { box.appendChild(h("p", { class: "muted" }, printable(trace.note || "No trace was kept for this run."))); return; }
      box.appendChild(waterfall(spans, trace));
    }, function (error) { box.removeChild(box.lastChild); box.appendChild(h("p", { class: "muted" }, printable(error.message))); });
    return box;
  }

  function waterfall(spans, trace) {
    var start = Infinity, end = -Infinity, children = {}, ids = {};
    spans.forEach(function (s) {
      s._start = new Date(s.start_time).getTime(); s._end = new Date(s.end_time || s.start_time).getTime();
      start = Math.min(start, s._start); end = Math.max(end, s._end); ids[s.span_id] = s;
    });
    spans.forEach(function (s) {
      var parent = ids[s.parent_span_id] ? s.parent_span_id : "";
      (children[parent] = children[parent] || []).push(s);
    });
    Object.keys(children).forEach(function (k) { children[k].sort(function (a, b) { return a._start - b._start; }); });
    var total = Math.max(1, end - start), rows = [], limit = 2000;
    (function walk(parent, depth) {
      (children[parent] || []).forEach(function (s) {
        if (rows.length >= limit) return;
        var attrs = (s.attributes || []).map(function (a) {
          var v = a.string_value !== undefined ? a.string_value : a.int_value !== undefined ? a.int_value : a.double_value !== undefined ? a.double_value : a.bool_value;
          return a.key + "=" + v;
        }).join("\n");
        var failedSpan = s.status_code === "SPAN_STATUS_CODE_ERROR";
        rows.push(h("div", { class: "span", title: printable(attrs) },
          h("div", { class: "name", style: "padding-left:" + depth * 12 + "px" }, printable(s.name)),
          h("div", { class: "track" }, h("div", { class: "bar" + (failedSpan ? " error" : ""),
            style: "left:" + (100 * (s._start - start) / total).toFixed(3) + "%;width:" + (100 * (s._end - s._start) / total).toFixed(3) + "%" })),
          h("div", { class: "muted" }, ((s._end - s._start) / 1000).toFixed(3) + " s")));
        walk(s.span_id, depth + 1);
      });
    })("", 0);
    var note = [];
    if (spans.length > limit) note.push("the first " + limit + " of " + spans.length + " spans are shown");
    if (num(trace.dropped_spans)) note.push(fmt(trace.dropped_spans) + " spans were dropped (over " + trace.max_spans + ")");
    return h("div", { class: "waterfall", role: "region", "aria-label": "Trace waterfall" }, rows, note.length ? h("p", { class: "muted" }, note.join("; ")) : null);
  }

  function confirmDialog(title, detail, action, withReason) {
    return new Promise(function (resolve) {
      var reason = withReason ? h("input", { id: "confirm-reason", placeholder: "why (kept with the run)" }) : null;
      var dialog = h("dialog", { "aria-labelledby": "confirm-title" },
        h("h2", { id: "confirm-title" }, title),
        typeof detail === "string" ? h("p", null, detail) : detail,
        reason ? h("div", { class: "field" }, h("label", { for: "confirm-reason" }, "Reason"), reason) : null,
        h("p", { class: "row" },
          h("button", { type: "button", class: "danger", onclick: function () { var r = reason ? reason.value : ""; dialog.close(); resolve(r); } }, action),
          h("button", { type: "button", onclick: function () { dialog.close(); } }, "Cancel")));
      dialog.addEventListener("close", function () { dialog.remove(); resolve(null); });
      document.body.appendChild(dialog);
      dialog.showModal();
    });
  }

  /** A dialog that only tells (what a purge did): its detail and a Close button. */
  function noticeDialog(title, detail) {
    var dialog = h("dialog", { "aria-labelledby": "notice-title" },
      h("h2", { id: "notice-title" }, title),
      detail,
      h("p", { class: "row" }, h("button", { type: "button", onclick: function () { dialog.close(); } }, "Close")));
    dialog.addEventListener("close", function () { dialog.remove(); });
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  /** Follow a run's log over Server-Sent Events; resumes after the last line seen when the
   * connection drops (the browser's own reconnect sends Last-Event-ID; when it gives up, this
   * opens a new stream from the last sequence number). Returns a function that stops it. */
  function followLogs(runId, onLine, onEnd, onStatus) {
    var last = 0, source = null, stopped = false, delay = 1000, timer = null;
    function open() {
      if (stopped) return;
      source = new EventSource("/v1/runs/" + enc(runId) + "/logs?follow=true&after_sequence=" + last);
      source.onopen = function () { onStatus("live"); delay = 1000; };
      source.addEventListener("log", function (event) {
        var line = JSON.parse(event.data), seq = num(line.sequence);
        if (seq <= last) return;
        last = seq;
        onLine(line);
      });
      source.addEventListener("end", function () { stopped = true; source.close(); onEnd(); });
      source.addEventListener("shutdown", function () { source.close(); onStatus("the coordinator is restarting; reconnecting…"); later(); });
      source.onerror = function () {
        if (stopped) return;
        onStatus("reconnecting…");
        if (source.readyState === EventSource.CLOSED) later();
      };
    }
    function later() {
      if (stopped) return;
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (stopped) return;
        // A refused stream may mean the session ended (asking the API shows the sign-in page then),
        // or that there is no such run to follow: either way, no more tries.
        api("/v1/runs/" + enc(runId)).then(open, function (error) {
          if (error.status === 401 || error.status === 403 || error.status === 404) {
            stopped = true;
            onStatus("stopped: " + error.message);
          } else later();
        });
      }, delay);
      delay = Math.min(delay * 2, 10000);
    }
    open();
    return function () { stopped = true; clearTimeout(timer); if (source) source.close(); };
  }

  /** A log that renders only the lines in view. Follows the end unless the reader scrolls up or pauses. */
  function LogView() {
    var self = this;
    var lines = [], dropped = 0, follow = true, paused = false, pending = [], frame = 0, pool = [];
    var spacer = h("div", { class: "spacer" });
    var node = h("div", { class: "log", role: "log", tabindex: "0", "aria-label": "Run log", "aria-live": "off" }, spacer);
    var followButton = h("button", { type: "button", "aria-pressed": "true" }, "Follow");
    var pauseButton = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
    var count = h("span", { class: "muted" }, "0 lines");
    this.node = node;
    this.controls = h("span", { class: "row" }, followButton, pauseButton, count);
    this.onProgress = null;
    followButton.addEventListener("click", function () { setFollow(!follow); if (follow) schedule(); });
    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.setAttribute("aria-pressed", String(paused));
      pauseButton.textContent = paused ? "Resume" : "Pause";
      if (!paused) { Array.prototype.push.apply(lines, pending.splice(0)); schedule(); }
    });
    var placed = 0; // where following last put the view: the reader scrolling above it stops following
    node.addEventListener("scroll", function () {
      var atEnd = node.scrollTop + node.clientHeight >= node.scrollHeight - ROW * 2;
      if (follow && node.scrollTop < placed - 1) setFollow(false);
      else if (!follow && atEnd && !paused) setFollow(true);
      schedule();
    });
    function setFollow(on) {
      follow = on;
      followButton.setAttribute("aria-pressed", String(on));
    }
    function schedule() { if (!frame) frame = requestAnimationFrame(draw); }
    function draw() {
      frame = 0;
      if (lines.length > MAX_LOG_LINES) { var cut = lines.length - MAX_LOG_LINES; lines.splice(0, cut); dropped += cut; }
      spacer.style.height = lines.length * ROW + "px";
      // As tall as its lines, up to a screenful: a short log takes little room.
      node.style.height = Math.min(420, Math.max(6, lines.length + 1) * ROW + 8) + "px";
      count.textContent = fmt(lines.length) + " lines" + (dropped ? " (" + fmt(dropped) + " earlier dropped from the page)" : "") + (pending.length ? " · " + fmt(pending.length) + " new while paused" : "");
      if (follow) { node.scrollTop = node.scrollHeight; placed = node.scrollTop; }
      var first = Math.max(0, Math.floor(node.scrollTop / ROW) - 20);
      var last = Math.min(lines.length, Math.ceil((node.scrollTop + node.clientHeight) / ROW) + 20);
      var used = 0;
      for (var i = first; i < last; i++) {
        var el = pool[used] || (pool[used] = spacer.appendChild(h("div", { class: "line" })));
        var line = lines[i];
        el.style.top = i * ROW + "px";
        el.className = "line" + (line.cls ? " " + line.cls : "");
        el.textContent = "";
        el.appendChild(h("span", { class: "seq" }, String(line.seq)));
        el.appendChild(document.createTextNode(line.text));
        el.hidden = false;
        used++;
      }
      for (; used < pool.length; used++) pool[used].hidden = true;
    }
    this.add = function (line) {
      var text = printable(line.text);
      if (text.length > MAX_LINE_CHARS) text = text.slice(0, MAX_LINE_CHARS) + " … (" + fmt(text.length - MAX_LINE_CHARS) + " more characters)";
      var cls = line.stream === "LOG_STREAM_STDERR" ? "err" : line.stream === "LOG_STREAM_SYSTEM" ? "sys" : "";
      var item = { seq: num(line.sequence), attempt: num(line.attempt), text: text, cls: cls };
      if (paused) pending.push(item); else lines.push(item);
      var found = PROGRESS.exec(line.text || ""), done = found ? null : INSERTED.exec(line.text || "");
      if (found && self.onProgress) {
        self.onProgress(found[1], { done: num(found[2].replace(/,/g, "")), total: num(found[3].replace(/,/g, "")), rate: num(found[5].replace(/,/g, "")), left: num(found[6]) });
      } else if (done && self.onProgress) { // the insert's summary: all of it written
        var rows = num(done[2].replace(/,/g, ""));
        self.onProgress(done[1], { done: rows, total: rows, rate: num(done[3].replace(/,/g, "")), left: 0 });
      }
      schedule();
    };
    this.stop = function () { if (frame) cancelAnimationFrame(frame); };
    /** Every line the page holds, those held back by Pause included, as the reader would see them. */
    this.lines = function () {
      return lines.concat(pending).map(function (l) { return { sequence: l.seq, attempt: l.attempt, text: l.text }; });
    };
  }

  // -- templates and connections -----------------------------------------------------------------

  /** Fill `body` with a list's rows a page at a time (100 each, what every list route takes); the
   * button `more` asks for the next page while there is one. */
  function pagedRows(path, key, body, more, rowOf, empty) {
    var token = "";
    function load() {
      more.disabled = true;
      api(path + "?page_size=100" + (token ? "&page_token=" + enc(token) : "")).then(function (answer) {
        var list = answer[key] || [];
        if (!list.length && !body.firstChild) body.appendChild(empty);
        list.forEach(function (item) { body.appendChild(rowOf(item)); });
        token = answer.next_page_token;
        more.hidden = !token;
        more.disabled = false;
      }, function (error) { more.disabled = false; failed(error); });
    }
    more.addEventListener("click", load);
    load();
  }

  function templatesPage() {
    var body = h("tbody");
    var more = h("button", { type: "button", hidden: true }, "Load more");
    page("Templates", [h("h1", null, "Templates"), h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, h("th", null, "Template"), h("th", null, "Description"), h("th", { class: "hide-narrow" }, "Fields"), h("th", { class: "num" }, "Revision"))), body)),
      h("p", null, more)]);
    pagedRows("/v1/templates", "templates", body, more, function (t) {
      return h("tr", null, h("td", null, h("a", { href: "#/templates/" + enc(t.id) }, printable(t.id))), h("td", null, printable(t.description)),
        h("td", { class: "hide-narrow" }, printable((t.field_names || []).join(", "))), h("td", { class: "num" }, String(t.revision)));
    }, h("tr", null, h("td", { colspan: 4, class: "muted" }, "No templates yet (seedbed template create FILE).")));
  }

  function templatePage(templateId) {
    var result = h("div");
    var count = h("input", { id: "preview-count", type: "number", min: 1, max: 100, value: 10, style: "width:8ch" });
    var seed = h("input", { id: "preview-seed", type: "number", placeholder: "random", style: "width:12ch" });
    var source = h("pre", { class: "diff", style: "padding:8px 10px" });
    page("Template " + templateId, [h("h1", null, "Template " + printable(templateId)),
      h("div", { class: "split" },
        h("div", null, h("div", { class: "panel" }, h("div", { class: "row" },
          h("div", { class: "field" }, h("label", { for: "preview-count" }, "Rows"), count),
          h("div", { class: "field" }, h("label", { for: "preview-seed" }, "Seed"), seed),
          h("button", { type: "button", class: "primary", onclick: preview }, "Preview")), result)),
        h("div", null, h("div", { class: "panel" }, h("h2", null, "Source"), source)))]);
    var ok = live();
    api("/v1/templates/" + enc(templateId)).then(function (t) { if (ok()) { source.textContent = printableLines(t.source); preview(); } }, function (error) {
      if (ok()) problemPage("template " + templateId, error);
    });
    function preview() {
      var body = { count: Math.max(1, Math.floor(num(count.value)) || 10) };
      if (seed.value !== "") body.seed = String(Math.floor(num(seed.value)));
      clear(result).appendChild(h("p", { class: "muted" }, "Generating…"));
      api("/v1/templates/" + enc(templateId) + "/preview", { method: "POST", body: body }).then(function (answer) {
        clear(result).appendChild(rowsTable((answer.rows_json || []).map(function (r) { return JSON.parse(r); })));
        if (answer.faker_version) result.appendChild(h("p", { class: "muted" }, "Faker " + printable(answer.faker_version)));
      }, function (error) { clear(result).appendChild(h("p", { role: "alert" }, printable(error.message))); });
    }
  }

  function rowsTable(rows) {
    var columns = [];
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (columns.indexOf(k) < 0) columns.push(k); }); });
    return h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, columns.map(function (c) { return h("th", null, printable(c)); }))),
      h("tbody", null, rows.map(function (r) {
        return h("tr", null, columns.map(function (c) {
          var v = r[c];
          return h("td", null, v === null || v === undefined ? "" : printable(typeof v === "string" ? v : JSON.stringify(v)));
        }));
      }))));
  }

  function connectionsPage() {
    var body = h("tbody");
    var more = h("button", { type: "button", hidden: true }, "Load more");
    page("Connections", [h("h1", null, "Connections"), h("div", { class: "table-wrap" }, h("table", null,
      h("thead", null, h("tr", null, h("th", null, "Connection"), h("th", null, "Kind"), h("th", { class: "hide-narrow" }, "Address"),
        h("th", { class: "hide-narrow" }, "Project"), h("th", null, "Test"))), body)),
      h("p", null, more)]);
    pagedRows("/v1/connections", "connections", body, more, connectionRow,
      h("tr", null, h("td", { colspan: 5, class: "muted" }, "No connections yet (seedbed connection create).")));
  }

  function connectionRow(c) {
    var outcome = h("span", { class: "muted", role: "status" });
    // Testing reaches the target with the connection's secret: the API lets editors do it.
    var test = roleIn(c.project_key || "default") >= ROLES.editor ? h("button", { type: "button", "aria-label": "Test " + c.id }, "Test") : null;
    if (!test) return connectionCells(c, h("span", { class: "muted" }, "editors may test it"));
    test.addEventListener("click", function () {
      test.disabled = true; outcome.textContent = "testing…";
      api("/v1/connections/" + enc(c.id) + "/test", { method: "POST" }).then(function (r) {
        test.disabled = false;
        outcome.textContent = (r.ok ? "✓ reachable" : "✗ " + printableLines(r.message)) + (r.latency_seconds ? " (" + (num(r.latency_seconds) * 1000).toFixed(0) + " ms)" : "");
      }, function (error) { test.disabled = false; outcome.textContent = "✗ " + printable(error.message); });
    });
    return connectionCells(c, [test, " ", outcome]);
  }

  function connectionCells(c, testCell) {
    return h("tr", null, h("td", null, printable(c.id), c.description ? h("div", { class: "muted" }, printable(c.description)) : null),
      h("td", null, printable(String(c.kind || "").replace(/^CONNECTION_KIND_/, "").toLowerCase())),
      h("td", { class: "hide-narrow" }, printable(c.url || (c.rest && c.rest.base_url) || "")),
      h("td", { class: "hide-narrow" }, printable(c.project_key)), h("td", null, testCell));
  }

  // -- start -------------------------------------------------------------------------------------

  // logLines: the open run page's log as data ({sequence, attempt, text} each), since the document
  // holds only the lines in view; [] on other pages.
  window.SeedbedConsole = {
    printable: printable,
    printableLines: printableLines,
    diffLines: diffLines,
    logLines: function () { return state.logView ? state.logView.lines() : []; },
  };
  api("/console/session").then(function (me) {
    if (me.signed_in) started(me);
    else signIn(me.reason || "");
  }, function (error) { signIn(printable(error.message)); });
})();
