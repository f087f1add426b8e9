// The team dashboard at /app/ (issue 18): built only on the public GraphQL API.
import { render } from 'preact';
import '../lib/style.css';
import './app.css';
import { App } from './App.js';

render(<App />, document.getElementById('root')!);
