// What a channel did, for the test pages flow.html and many.html: `got.events` gets open, end
// and close, `got.end` the end's data, `got.errors` each error's code, message and lost range;
// `show` runs after end, close and each error.
export function record(ch, got, show) {
  ch.on('open', () => got.events.push('open'));
  ch.on('end', (data) => {
    got.events.push('end');
    got.end = data;
    show();
  });
  ch.on('close', () => {
    got.events.push('close');
    show();
  });
  ch.on('error', (e) => {
    got.errors.push({ code: e && e.code, message: String(e && e.message), from: e && e.from, to: e && e.to });
    show();
  });
}
