// Entry of Strata's editor bundle (built by scripts/ui-vendor.sh with esbuild into
// ui/vendor/strata-editor.iife.min.js). It only wires released packages together: CodeMirror 6
// with codemirror-promql, exposed as `window.StrataEditor.createEditor(parent, options)`.
//
// options: { doc: string, onRun: (text) => void, onChange: (text) => void,
//            remoteUrl: string (the node's base URL with its route prefix, e.g. "/strata") }
// returns: { view, getValue(), setValue(text), focus() }
import { EditorView, keymap, placeholder, highlightSpecialChars, drawSelection } from '@codemirror/view';
import { EditorState, Prec } from '@codemirror/state';
import { defaultKeymap, history, historyKeymap, insertNewline } from '@codemirror/commands';
import { autocompletion, closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { lintKeymap } from '@codemirror/lint';
import { bracketMatching, syntaxHighlighting, indentOnInput } from '@codemirror/language';
import { classHighlighter } from '@lezer/highlight';
import { PromQLExtension } from '@prometheus-io/codemirror-promql';

export function createEditor(parent, options = {}) {
  const onRun = options.onRun || (() => {});
  const onChange = options.onChange || (() => {});
  const remote = {
    url: options.remoteUrl || '',
    httpMethod: 'GET',
    // A failed completion request must not look like a page error.
    httpErrorHandler: (e) => console.warn('completion request failed:', e),
  };
  const promql = new PromQLExtension().activateCompletion(true).activateLinter(true).setComplete({ remote });
  const runKeys = Prec.highest(
    keymap.of([
      { key: 'Enter', run: (v) => { onRun(v.state.doc.toString()); return true; } },
      { key: 'Shift-Enter', run: insertNewline },
    ]),
  );
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: options.doc || '',
      extensions: [
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        autocompletion(),
        syntaxHighlighting(classHighlighter),
        placeholder(options.placeholder || 'Expression (press Enter to run, Shift+Enter for a new line)'),
        EditorView.lineWrapping,
        // autocompletion() binds its Enter (accept an option) at the highest precedence, before runKeys.
        keymap.of(closeBracketsKeymap),
        runKeys,
        keymap.of([...defaultKeymap, ...historyKeymap, ...lintKeymap]),
        promql.asExtension(),
        EditorView.updateListener.of((u) => { if (u.docChanged) onChange(u.state.doc.toString()); }),
      ],
    }),
  });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    focus: () => view.focus(),
  };
}
