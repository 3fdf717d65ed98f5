/**
 * The inbox's rendering of a model-written draft (inbox/markdown.ts): an address on the web opens
 * apart from the inbox (a new tab, no opener, no referrer, no follow), a citation stays on the page,
 * and any other scheme is only text. The browser tests (inbox-drafts) see a rendered page whose
 * outside links the citation pass (issue 19) turned into text: this checks the links themselves.
 */
import { renderMarkdown } from '../inbox/markdown';

const rendered = async (markdown: string): Promise<string> => String(await renderMarkdown(markdown));

test('a link to the web opens in a new tab with no opener, referrer or follow', async () => {
  await expect(rendered('See [the survey](https://example.org/survey).')).resolves.toContain(
    '<a href="https://example.org/survey" rel="noopener noreferrer nofollow" target="_blank">the survey</a>',
  );
});

test('a citation of a step stays a link on the page, to its reference entry', async () => {
  const html = await rendered('Loft insulation pays back first [s1](#ref-step-s1).');
  expect(html).toContain('<a href="#ref-step-s1" class="cite">s1</a>');
  expect(html).not.toContain('target=');
});

test.each([
  ['javascript:', '[click](javascript:alert(1))'],
  ['data:', '[click](data:text/html,<script>alert(1)</script>)'],
  ['protocol-relative', '[click](//evil.example/)'],
  ['a raw anchor with a handler', '<a href="https://example.org" onclick="alert(1)">click</a>'],
])('a link by %s is text, not a link or a handler', async (_kind, markdown) => {
  const html = await rendered(markdown);
  expect(html).not.toMatch(/<a\b[^>]*(href="(javascript|data):|href="\/\/|\son\w+=)/i);
  expect(html).toContain('click');
});
