import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { connectApi } from './api/client';
import { App } from './App';
import { init } from './store/actions';
import { useStore } from './store';
import './styles.css';

const client = connectApi();
void init(client);
// for tests and benchmarks: the store, read-only by convention
(window as unknown as { __aiSandbox: unknown }).__aiSandbox = { store: useStore };
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
